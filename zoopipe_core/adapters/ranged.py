"""Ranged reads of files on any fsspec URL: what the driver reads while it plans shards.

Planning a parallel run over a file in an object store must not pull the file through the
driver: it reads small windows (the bytes around a cut, a Parquet footer) with
:func:`read_range`, which counts every byte it returns in :data:`DRIVER_READS`, so a test or a
benchmark can show how little the driver read. Workers stream their own ranges with their own
readers (:class:`RangeReader` for text shards); those reads are not counted here.

Example:
    >>> import fsspec
    >>> fsspec.filesystem("memory").pipe("/ranged-doc/data.csv", b"id,name\\n1,a\\n2,b\\n")
    >>> before = DRIVER_READS.bytes
    >>> read_range("memory://ranged-doc/data.csv", 8, 12), object_size("memory://ranged-doc/data.csv")
    (b'1,a\\n', 16)
    >>> DRIVER_READS.bytes - before
    4
"""

from __future__ import annotations

import io
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from zoopipe_core.adapters.storage import filesystem_for


@dataclass
class ReadCounter:
    """Bytes and requests of the ranged reads made through :func:`read_range` in this process.

    Example:
        >>> counter = ReadCounter()
        >>> counter.add(100); counter.add(20)
        >>> counter.bytes, counter.requests
        (120, 2)
    """

    bytes: int = 0
    requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, count: int) -> None:
        with self._lock:
            self.bytes += count
            self.requests += 1

    def reset(self) -> None:
        with self._lock:
            self.bytes = self.requests = 0


#: What this process read through :func:`read_range` (the driver's planning reads).
DRIVER_READS = ReadCounter()


def read_range(url: str, start: int, end: int) -> bytes:
    """Bytes ``start..end`` of the file at ``url`` (fewer at the end of the file), in one ranged
    request, counted in :data:`DRIVER_READS`."""
    if start < 0 or end < start:
        raise ValueError(f"a byte range is 0 <= start <= end, got {start}..{end}")
    if end == start:
        return b""
    fs, path = filesystem_for(url)
    data = bytes(fs.cat_file(path, start=start, end=end))
    DRIVER_READS.add(len(data))
    return data


def object_size(url: str) -> int:
    """Size in bytes of the file at ``url``, from its metadata (no byte of it is read)."""
    fs, path = filesystem_for(url)
    return known_size(fs, path, url)


def known_size(fs: Any, path: str, url: str) -> int:
    """``fs.size(path)``, or OSError naming ``url`` when the filesystem does not know it (an HTTP
    server that sends no Content-Length): reading a file by byte ranges needs its size.

    Example:
        >>> import fsspec
        >>> fs = fsspec.filesystem("memory")
        >>> fs.pipe("/known-size-doc/a.bin", b"12345")
        >>> known_size(fs, "/known-size-doc/a.bin", "memory://known-size-doc/a.bin")
        5
    """
    size = fs.size(path)
    if size is None:
        raise OSError(
            f"{url}: {type(fs).__name__} does not report the file's size, which reading it by byte "
            "ranges (shards, Parquet and Arrow) needs; copy the file to local disk or an object store first"
        )
    return int(size)


# Workers' streams of their own byte range (text shards) ---------------------------------------


class BlockStream(io.RawIOBase):
    """A binary file object read block by block: ``next_block()`` gives the next block of bytes
    (waiting for it), or None at the end; reads take from the current block, handing a whole block
    over without copying it. :class:`RangeReader` and the S3 plugin's range stream are block
    streams, each passing its own fetcher.

    Example:
        >>> blocks = [b"abc", b"de"]
        >>> stream = BlockStream(lambda: blocks.pop(0) if blocks else None)
        >>> stream.read(2), stream.read(5), stream.read(10), stream.read(10)
        (b'ab', b'c', b'de', b'')
    """

    def __init__(self, next_block: Callable[[], bytes | None]) -> None:
        super().__init__()
        self._next_block = next_block
        self._block = memoryview(b"")
        self._at = 0  # next unread byte of _block
        self._ended = False

    def readable(self) -> bool:
        return True

    def _unread(self) -> bool:
        """Make the current block hold an unread byte; False at the end of the stream."""
        while self._at >= len(self._block):
            if self._ended:
                return False
            try:
                block = self._next_block()
            except BaseException:
                self._ended = True
                raise
            if block is None:
                self._ended = True
                return False
            self._block, self._at = memoryview(block), 0
        return True

    def readinto(self, buffer: Any) -> int:
        target = memoryview(buffer).cast("B")
        if not self._unread():
            return 0
        count = min(len(target), len(self._block) - self._at)
        target[:count] = self._block[self._at : self._at + count]
        self._at += count
        return count

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        if not self._unread():
            return b""
        if self._at == 0 and size >= len(self._block):  # the whole block: no copy
            self._at = len(self._block)
            return bytes(self._block.obj)  # the fetched bytes object itself
        chunk = self._block[self._at : self._at + size]  # one copy, straight from the fetched block
        self._at += len(chunk)
        return bytes(chunk)

    def close(self) -> None:
        self._block, self._ended = memoryview(b""), True
        super().close()


class RangeReader(BlockStream):
    """A binary file object of bytes ``start..end`` of the file at ``url``: what a worker reads
    of a shard of a CSV or JSON Lines file in an object store. Blocks of ``block_size`` bytes are
    fetched by ranged requests (``fs.cat_file(path, start=, end=)``) on ``prefetch`` background
    threads, ahead of the reader, so parsing and fetching overlap (network waits release the GIL).
    No byte outside the range is requested; these reads are not counted in :data:`DRIVER_READS`.

    Example:
        >>> import fsspec
        >>> fsspec.filesystem("memory").pipe("/range-reader-doc/data.jsonl", b'{"a":1}\\n{"a":2}\\n{"a":3}\\n')
        >>> with RangeReader("memory://range-reader-doc/data.jsonl", 8, 16, block_size=3) as reader:
        ...     reader.read(5), reader.read()
        (b'{"a', b'":2}\\n')
    """

    def __init__(
        self, url: str, start: int, end: int, *, block_size: int = 8 << 20, prefetch: int = 2
    ) -> None:
        super().__init__(self._take_block)
        if start < 0 or end < start:
            raise ValueError(f"a byte range is 0 <= start <= end, got {start}..{end}")
        if block_size < 1 or prefetch < 1:
            raise ValueError(f"block_size and prefetch must be >= 1, got {block_size}, {prefetch}")
        self.url, self.start, self.end = url, start, end
        self._fs, self._path = filesystem_for(url)
        self._block_size = block_size
        self._next = start  # where the next block to request starts
        self._pool = ThreadPoolExecutor(max_workers=prefetch, thread_name_prefix="zoopipe-range")
        self._pending: deque[Future[bytes]] = deque()
        for _ in range(prefetch):
            self._request()

    def _request(self) -> None:
        if self._next < self.end:
            first, last = self._next, min(self._next + self._block_size, self.end)
            self._pending.append(self._pool.submit(self._fetch, first, last))
            self._next = last

    def _fetch(self, first: int, last: int) -> bytes:
        data = self._fs.cat_file(self._path, start=first, end=last)
        if len(data) != last - first:
            raise OSError(
                f"{self.url}: bytes {first}..{last} came back as {len(data)} bytes: the object is shorter "
                "than when the run was planned (it changed); plan the run again"
            )
        return bytes(data)

    def _take_block(self) -> bytes | None:
        if not self._pending:
            return None
        block = self._pending.popleft().result()
        self._request()
        return block

    def close(self) -> None:
        if not self.closed:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pending.clear()
        super().close()


# --------------------------------------------------------------------------- random access


class RangedFile:
    """Random access to the file at ``url`` by ranged reads: what the Rust Parquet and Arrow
    readers read a URL through (``size``, ``read_range``, ``read_ranges``), so a worker fetches
    only its row groups or record batches and the footer, never the whole object. Reads are
    counted in ``counter`` when given (the driver passes :data:`DRIVER_READS`).

    Example:
        >>> import fsspec
        >>> fsspec.filesystem("memory").pipe("/ranged-doc/table.bin", b"0123456789")
        >>> file = RangedFile("memory://ranged-doc/table.bin")
        >>> file.size, file.read_range(2, 5), file.read_ranges([(0, 1), (8, 20), (4, 4)])
        (10, b'234', [b'0', b'89', b''])
    """

    def __init__(self, url: str, *, counter: ReadCounter | None = None) -> None:
        self.url = url
        self._fs, self._path = filesystem_for(url)
        self.size = known_size(self._fs, self._path, url)
        self._counter = counter

    def read_range(self, start: int, end: int) -> bytes:
        """Bytes ``start..end`` (fewer at the end of the file), in one request."""
        return self.read_ranges([(start, end)])[0]

    def read_ranges(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """The bytes of each ``(start, end)``, fetched concurrently where the filesystem can
        (fsspec's ``cat_ranges``: s3fs gathers the requests)."""
        for start, end in ranges:
            if start < 0 or end < start:
                raise ValueError(f"a byte range is 0 <= start <= end, got {start}..{end}")
        wanted = [(start, min(end, self.size)) for start, end in ranges]
        fetch = [(start, end) for start, end in wanted if end > start]  # an empty range costs no request
        paths, starts, ends = [self._path] * len(fetch), [s for s, _ in fetch], [e for _, e in fetch]
        data = iter(self._fs.cat_ranges(paths, starts, ends, on_error="raise") if fetch else [])
        out = [bytes(next(data)) if end > start else b"" for start, end in wanted]
        if self._counter is not None:
            for chunk in out:
                if chunk:
                    self._counter.add(len(chunk))
        return out

    def close(self) -> None:
        """Nothing to release: every read is a request of its own."""

    def __repr__(self) -> str:
        return f"RangedFile({self.url!r}, size={self.size})"
