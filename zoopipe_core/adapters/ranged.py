"""Ranged reads of files on any fsspec URL: what the driver reads while it plans shards.

Planning a parallel run over a file in an object store must not pull the file through the
driver: it reads small windows (the bytes around a cut, a Parquet footer) with
:func:`read_range`, which counts every byte it returns in :data:`DRIVER_READS`, so a test or a
benchmark can show how little the driver read. Workers stream their own ranges with their own
readers; those reads are not counted here.

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

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

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
    return int(fs.size(path))


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
        self.size = int(self._fs.size(self._path))
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
