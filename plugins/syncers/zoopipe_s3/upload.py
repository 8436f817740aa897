"""How an output is written to S3: a multipart upload whose parts are sent in the background.

The pipeline writes an output from one thread, chunk by chunk. Sending each part from inside
``write`` would stall that thread for every part's round trip (s3fs's own files do), so
:class:`S3Upload` hands every full part to a small pool of threads of its own and returns: up
to ``max_pending`` parts travel at the same time while the next one fills. ``write`` waits only
when that many are in flight, so memory stays about ``(max_pending + 1) * part_size``. Each
thread sends its part through s3fs's synchronous ``call_s3``, which runs the request on
fsspec's event loop and is safe to call from any thread. The part size doubles every
``parts_per_size`` parts, so that S3's limit of 10,000 parts does not cap the output's size.

The upload is completed by ``commit()`` once every part was sent, with the parts in order; an
output of at most one part is stored by one PUT instead. Until then S3 shows nothing under
the key; ``discard()`` (and a failed commit) waits for the parts in flight, so that none lands
afterwards, and aborts the upload, which deletes the parts sent.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from zoopipe_s3.merge import MAX_PART, MIN_PART, _abort


class S3Upload:
    """An object being written to S3 under its final key, invisible until ``commit()``.

    Writes are buffered into parts of ``part_size`` bytes (8 MiB by default; S3 wants 5 MiB at
    least); each full part is sent in the background, ``max_pending`` (4) at most at a time, as
    a multipart upload that ``commit()`` completes and ``discard()`` aborts. An output of at most
    one part is stored by one PUT on commit. Either way no reader ever sees a partial
    object, and no temporary key exists. A part that fails is raised by the next ``write``,
    ``flush`` or ``commit`` (naming the key and the part). Obtained from
    :meth:`S3Syncer.open_uncommitted`; zoopipe's outputs use it for ``s3://`` URLs. The
    defaults are class attributes: set them on a subclass, or pass them to the constructor.

    Example (against moto's S3 server, as in the test suite):
        >>> import s3fs
        >>> from moto.server import ThreadedMotoServer
        >>> server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        >>> server.start()
        >>> endpoint = "http://%s:%d" % server.get_host_and_port()
        >>> options = {"client_kwargs": {"endpoint_url": endpoint}, "key": "k", "secret": "s"}
        >>> fs = s3fs.S3FileSystem(skip_instance_cache=True, **options)
        >>> fs.mkdir("upload-demo")
        >>> upload = S3Upload(fs, "upload-demo/out.txt")
        >>> _ = upload.write(b"hello")
        >>> fs.exists("upload-demo/out.txt")
        False
        >>> upload.commit(); fs.cat("upload-demo/out.txt")
        b'hello'
        >>> big = S3Upload(fs, "upload-demo/big.bin", part_size=5 << 20, max_pending=2)
        >>> _ = big.write(b"x" * (11 << 20))  # two full parts sent in the background
        >>> big.peak_pending <= 2, fs.exists("upload-demo/big.bin")
        (True, False)
        >>> big.commit(); fs.size("upload-demo/big.bin") == 11 << 20
        True
        >>> _ = fs.rm("upload-demo", recursive=True)  # moto's buckets outlive its server in this process
        >>> server.stop()
    """

    #: Bytes in each part but the last (of the first ``parts_per_size`` parts; see below).
    part_size: int = 8 << 20
    #: Parts sent at the same time; ``write`` waits while this many are in flight.
    max_pending: int = 4
    #: The part size doubles after every this many parts (up to S3's 5 GiB): S3 takes at most
    #: 10,000 parts, which at 8 MiB would cap an output at 80 GiB; this way small outputs keep
    #: small parts and memory, and an output of up to S3's 5 TiB fits.
    parts_per_size: int = 1000

    def __init__(
        self, fs: Any, path: str, *, part_size: int | None = None, max_pending: int | None = None
    ) -> None:
        self.fs = fs
        self.path = path
        self.part_size = self.part_size if part_size is None else part_size
        self.max_pending = self.max_pending if max_pending is None else max_pending
        if self.part_size < MIN_PART:
            raise ValueError(
                f"part_size must be at least {MIN_PART} bytes (S3's minimum), not {self.part_size}"
            )
        if self.max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, not {self.max_pending}")
        bucket, key, _ = fs.split_path(path)
        self._target = {"Bucket": bucket, "Key": key}
        self._ids: dict[str, Any] | None = None  # the multipart upload, once its first part is full
        self._buffer = bytearray()  # what is written and not yet handed over as a part
        self._sends: list[Future[str]] = []  # part i + 1 is self._sends[i]; each gives its ETag
        self._pool: ThreadPoolExecutor | None = None
        self._in_flight: list[Future[str]] = []  # the sends not known to have ended
        self._slots = threading.BoundedSemaphore(self.max_pending)
        self._lock = threading.Lock()
        self._error: BaseException | None = None  # the first part that failed
        self._finished = False  # committed or discarded
        #: The most parts ever in flight at once (at most ``max_pending``).
        self.peak_pending = 0

    @property
    def url(self) -> str:
        return f"s3://{self.path}"

    @property
    def pending(self) -> int:
        """Parts sent and not yet acknowledged (or failed) by S3."""
        return sum(not send.done() for send in self._in_flight)

    @property
    def buffered(self) -> int:
        """Bytes written and not yet handed over as a part (at most a part between writes)."""
        return len(self._buffer)

    def write(self, data: Any) -> int:
        """Buffer ``data``; send each part that fills, waiting only while ``max_pending`` are
        in flight."""
        self._check()
        self._buffer += data
        # Strictly more than a part: the upload's last part, sent by commit(), is never empty,
        # and an output of exactly one part stays a single PUT.
        while len(self._buffer) > (size := self._next_size()):
            self._reserve()  # before the part is copied out: memory holds max_pending + 1 parts
            with memoryview(self._buffer) as view:
                part = bytes(view[:size])
            del self._buffer[:size]
            self._send(part)
        return memoryview(data).nbytes

    def flush(self) -> None:
        """Raise a part that failed; full parts are already being sent, and nothing becomes
        visible before ``commit()``."""
        self._check()

    def commit(self) -> None:
        """Publish the object: one PUT, or send the last part, wait for every part and complete
        the multipart upload. On failure the upload is discarded and the error raised."""
        if self._finished:
            raise ValueError(f"the upload to {self.url} was already committed or discarded")
        try:
            if self._error is not None:
                raise self._error
            if self._ids is None:
                self.fs.call_s3("put_object", Body=bytes(self._buffer), **self._target)
            else:
                if self._buffer:
                    self._reserve()
                    self._send(bytes(self._buffer))
                self._buffer = bytearray()
                parts = [{"PartNumber": n, "ETag": send.result()} for n, send in enumerate(self._sends, 1)]
                self.fs.call_s3("complete_multipart_upload", MultipartUpload={"Parts": parts}, **self._ids)
        except BaseException:
            self.discard()
            raise
        self._finished = True
        self._buffer = bytearray()
        self._stop_threads()
        self.fs.invalidate_cache(self.path)

    def discard(self) -> None:
        """Drop everything written: wait for the parts in flight, then abort the multipart
        upload, if one was started. Nothing is left on S3 (a failure to abort is logged)."""
        with self._lock:
            if self._finished:
                return
            self._finished = True
        self._buffer = bytearray()
        # Not cancelled: a part request already on the wire could still land after the abort
        # and leave a part behind (S3 documents this), so the abort comes after every part ended.
        wait(self._sends)
        self._stop_threads()
        if self._ids is not None:
            _abort(self.fs, self._ids, self.url)

    # ------------------------------------------------------------------ parts

    def _check(self) -> None:
        if self._finished:
            raise ValueError(f"the upload to {self.url} was already committed or discarded")
        if self._error is not None:
            raise self._error

    def _stop_threads(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)  # every part has ended: the threads are idle

    def _next_size(self) -> int:
        doublings = len(self._sends) // self.parts_per_size
        return min(self.part_size << doublings, MAX_PART)

    def _reserve(self) -> None:
        """Start the multipart upload if need be, and take a slot for the next part: waits
        while ``max_pending`` parts are in flight; raises a part that failed."""
        if self._ids is None:
            try:
                upload = self.fs.call_s3("create_multipart_upload", **self._target)
            except Exception as exc:
                raise OSError(f"could not start the multipart upload of {self.url}: {exc}") from exc
            self._ids = {**self._target, "UploadId": upload["UploadId"]}
            if self._finished:  # discarded meanwhile, from another thread
                _abort(self.fs, self._ids, self.url)
        self._slots.acquire()  # waits (GIL released) for a part in flight to end
        try:
            self._check()
        except BaseException:
            self._slots.release()
            raise

    def _send(self, part: bytes) -> None:
        """Hand ``part`` to a thread, in the slot :meth:`_reserve` took."""
        number = len(self._sends) + 1
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.max_pending, thread_name_prefix="zoopipe-s3-upload")
        send = self._pool.submit(self._upload_part, number, part)
        send.add_done_callback(self._sent)
        self._sends.append(send)
        self._in_flight = [s for s in self._in_flight if not s.done()] + [send]
        self.peak_pending = max(self.peak_pending, len(self._in_flight))

    def _upload_part(self, number: int, part: bytes) -> str:
        assert self._ids is not None
        try:
            response = self.fs.call_s3("upload_part", PartNumber=number, Body=part, **self._ids)
        except Exception as exc:
            raise OSError(f"could not upload part {number} ({len(part)} bytes) of {self.url}: {exc}") from exc
        return str(response["ETag"])

    def _sent(self, send: Future[str]) -> None:
        """A part ended (on its thread): free its slot, keep its error."""
        error = None if send.cancelled() else send.exception()
        with self._lock:
            if error is not None and self._error is None:
                self._error = error
        self._slots.release()


__all__ = ["S3Upload"]
