"""How a worker reads its byte range of an S3 object: one ranged GetObject, streamed.

A shard of a CSV or JSON Lines object (``zoopipe_core.adapters.ranged_split``) reads bytes
``start..end`` of it. Many small ranged GETs cost a request each (and a server that reads the
whole object for every range, as moto's does, a whole object each); one GET whose body is
streamed costs one, and keeps memory bounded. A background thread pulls the body in chunks
ahead of the parser (``ahead`` chunks at most), so fetching and parsing overlap.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

from fsspec.asyn import sync
from fsspec.core import url_to_fs

from zoopipe_core.adapters import BlockStream

_END = object()


class S3RangeStream(BlockStream):
    """A binary file object of bytes ``start..end`` of the S3 object at ``url``, read by one
    ranged GetObject whose body a background thread streams in ``chunk_size`` pieces, at most
    ``ahead`` of them ahead of the reader. No byte outside the range is requested. ``fs``: the
    s3fs filesystem to read with (by default, the one fsspec resolves for ``url``).

    Example (against moto's S3 server, as in the test suite):
        >>> import s3fs
        >>> from moto.server import ThreadedMotoServer
        >>> server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        >>> server.start()
        >>> endpoint = "http://%s:%d" % server.get_host_and_port()
        >>> fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint}, key="k", secret="s")
        >>> fs.mkdir("range-doc"); _ = fs.pipe("range-doc/rows.jsonl", b'{"a":1}\\n{"a":2}\\n{"a":3}\\n')
        >>> with S3RangeStream("s3://range-doc/rows.jsonl", 8, 16, chunk_size=3, fs=fs) as stream:
        ...     b"".join(iter(lambda: stream.read(100), b""))
        b'{"a":2}\\n'
        >>> _ = fs.rm("range-doc", recursive=True)  # moto's buckets outlive its server in this process
        >>> server.stop()
    """

    def __init__(
        self, url: str, start: int, end: int, *, chunk_size: int = 4 << 20, ahead: int = 8, fs: Any = None
    ) -> None:
        super().__init__(self._take_block)
        if start < 0 or end < start:
            raise ValueError(f"a byte range is 0 <= start <= end, got {start}..{end}")
        self.url, self.start, self.end = url, start, end
        self._chunk_size = chunk_size
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(ahead, 1))
        self._stop = threading.Event()
        if start == end:
            self._ended = True
        else:
            # s3fs's split_path takes the URL itself as well as fsspec's path
            fs, path = url_to_fs(url) if fs is None else (fs, url)
            thread = threading.Thread(
                target=self._pump, args=(fs, path), name="zoopipe-s3-range", daemon=True
            )
            thread.start()

    def _pump(self, fs: Any, path: str) -> None:
        try:
            bucket, key, version = fs.split_path(path)
            request = {"Bucket": bucket, "Key": key, "Range": f"bytes={self.start}-{self.end - 1}"}
            if version:
                request["VersionId"] = version
            body = fs.call_s3("get_object", **request)["Body"]
            got = 0
            try:
                while not self._stop.is_set():
                    data = sync(fs.loop, body.read, self._chunk_size)
                    if not data:
                        break
                    got += len(data)
                    self._put(data)
            finally:
                body.close()
            if got != self.end - self.start and not self._stop.is_set():
                raise OSError(
                    f"{self.url}: bytes {self.start}..{self.end} came back as {got} bytes: the object is "
                    "shorter than when the run was planned (it changed); plan the run again"
                )
            self._put(_END)
        except BaseException as failed:  # handed to the reader, which raises it
            self._put(failed)

    def _put(self, item: Any) -> None:
        """Queue ``item``, waiting while the reader is ``ahead`` chunks behind, unless closed."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _take_block(self) -> bytes | None:
        item = self._queue.get()
        if item is _END:
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self._stop.set()  # the pump stops at its next chunk and closes the response
        super().close()
