"""Copy-on-write views of memory that lives in a shared file mapping (Linux).

Shared weights arrive in a worker as a buffer inside a ``MAP_SHARED`` mapping: a block of
``multiprocessing.shared_memory`` or Ray's object store (a deleted file in ``/dev/shm`` that the
raylet holds open). Tensors over that mapping would let one worker's in-place write change what
every other worker sees. :func:`private_view` maps the same pages again with ``MAP_PRIVATE``:
reads share the physical pages with every other process (one copy per machine), and a write
copies only the page it touches, into this process.

Example:
    >>> import mmap, numpy as np
    >>> from multiprocessing import shared_memory
    >>> block = shared_memory.SharedMemory(create=True, size=mmap.PAGESIZE * 2)
    >>> block.buf[:4] = b"abcd"
    >>> view = private_view(np.frombuffer(block.buf, dtype=np.uint8)[1:4])
    >>> bytes(view), view.readonly
    (b'bcd', False)
    >>> view[0] = ord("X")                 # touches a private copy of the page only
    >>> bytes(block.buf[:4]), bytes(view)
    (b'abcd', b'Xcd')
    >>> del view
    >>> block.close(); block.unlink()
"""

from __future__ import annotations

import contextlib
import dataclasses
import mmap
import os
from collections.abc import Iterator
from typing import Any


class NotSharedMemory(LookupError):
    """The buffer is not inside a file mapping this process can map again.

    Example:
        >>> try:
        ...     private_view(bytearray(16))          # this process's own heap
        ... except NotSharedMemory as exc:
        ...     "not in a shared file mapping" in str(exc)
        True
    """


@dataclasses.dataclass(frozen=True)
class Mapping:
    """One line of ``/proc/self/maps``: the file mapped at ``[start, end)`` from ``offset``.

    Example:
        >>> from multiprocessing import shared_memory
        >>> block = shared_memory.SharedMemory(create=True, size=4096)
        >>> mapping = mapping_of(buffer_address(block.buf)[0])
        >>> mapping.path == f"/dev/shm/{block.name}", mapping.deleted
        (True, False)
        >>> block.close(); block.unlink()
    """

    start: int
    end: int
    offset: int
    inode: int
    path: str

    @property
    def deleted(self) -> bool:
        return self.path.endswith(" (deleted)")


def buffer_address(buffer: Any) -> tuple[int, int]:
    """The start address and size in bytes of a buffer-protocol object (C-contiguous)."""
    view = memoryview(buffer)
    if not view.c_contiguous:
        raise ValueError("a shared buffer must be C-contiguous")
    import numpy as np  # the buffer protocol gives no address; NumPy's array interface does

    array = np.frombuffer(view.cast("B"), dtype=np.uint8)
    return int(array.__array_interface__["data"][0]), array.nbytes


def mapping_of(address: int) -> Mapping:
    """The file mapping of this process that holds ``address``.

    Raises NotSharedMemory when the address is in anonymous memory (the heap, a private copy).
    """
    with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            start, end = (int(bound, 16) for bound in fields[0].split("-"))
            if start <= address < end:
                inode = int(fields[4])
                path = fields[5].strip() if len(fields) > 5 else ""
                if inode == 0 or not path.startswith("/"):
                    raise NotSharedMemory(
                        f"address {address:#x} is in this process's own memory ({path or 'anonymous'}), "
                        "not in a shared file mapping"
                    )
                return Mapping(start, end, int(fields[2], 16), inode, path)
    raise NotSharedMemory(f"address {address:#x} is not mapped in this process")


def _open_by_inode(mapping: Mapping) -> int:
    """A read-only descriptor of the mapped file: by its path while it exists, else through a
    process that holds it open (this one, its parent, or a raylet: Ray's object store is a
    deleted file in /dev/shm that the raylet keeps open)."""
    if not mapping.deleted:
        with contextlib.suppress(OSError):
            fd = os.open(mapping.path, os.O_RDONLY)
            if os.fstat(fd).st_ino == mapping.inode:
                return fd
            os.close(fd)
    for pid in _candidate_holders():
        directory = f"/proc/{pid}/fd"
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            link = f"{directory}/{name}"
            try:
                if os.stat(link).st_ino != mapping.inode:
                    continue
                return os.open(link, os.O_RDONLY)
            except OSError:
                continue
    raise NotSharedMemory(
        f"no process this one may inspect holds {mapping.path} (inode {mapping.inode}) open"
    )


def _candidate_holders() -> Iterator[int]:
    """This process and its parent first (a Ray worker's parent is its raylet), then any raylet."""
    yield from (os.getpid(), os.getppid())
    try:
        entries = os.listdir("/proc")
    except OSError:
        return
    for entry in entries:
        if not entry.isdigit() or int(entry) in (os.getpid(), os.getppid()):
            continue
        try:
            with open(f"/proc/{entry}/comm", encoding="utf-8") as comm:
                if comm.read().strip() in ("raylet", "plasma_store"):
                    yield int(entry)
        except OSError:
            continue


def private_views(buffers: list[Any]) -> list[memoryview]:
    """:func:`private_view` of each buffer, mapping each shared file once: buffers in the same
    mapping (the arrays of one shared object) become slices of one private mapping of their span.
    """
    spans = [buffer_address(buffer) for buffer in buffers]
    views: list[memoryview | None] = [memoryview(b"") if size == 0 else None for _, size in spans]
    by_mapping: dict[tuple[int, int], list[int]] = {}
    for i, (address, size) in enumerate(spans):
        if size:
            mapping = mapping_of(address)
            by_mapping.setdefault((mapping.start, mapping.inode), []).append(i)
    for members in by_mapping.values():
        low = min(spans[i][0] for i in members)
        high = max(spans[i][0] + spans[i][1] for i in members)
        whole = _private_span(low, high - low)
        for i in members:
            address, size = spans[i]
            views[i] = whole[address - low : address - low + size]
    return [view for view in views if view is not None]


def private_view(buffer: Any) -> memoryview:
    """A writable copy-on-write view of ``buffer``'s bytes, sharing its physical pages.

    ``buffer`` must lie in one shared file mapping of this process. The view keeps its own
    mapping alive. Raises NotSharedMemory when the buffer is in private memory or its file
    cannot be reached.
    """
    return _private_span(*buffer_address(buffer))


def _private_span(address: int, size: int) -> memoryview:
    mapping = mapping_of(address)
    if address + size > mapping.end:
        raise NotSharedMemory("the buffer spans more than one mapping")
    file_offset = mapping.offset + (address - mapping.start)
    aligned = file_offset - file_offset % mmap.ALLOCATIONGRANULARITY
    fd = _open_by_inode(mapping)
    try:
        private = mmap.mmap(
            fd,
            size + (file_offset - aligned),
            flags=mmap.MAP_PRIVATE,
            prot=mmap.PROT_READ | mmap.PROT_WRITE,
            offset=aligned,
        )
    finally:
        os.close(fd)
    return memoryview(private)[file_offset - aligned :]
