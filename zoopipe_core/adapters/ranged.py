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
