"""Objects shared with local worker processes through ``multiprocessing.shared_memory``.

:func:`write_shared` pickles an object once (protocol 5) into a block; the
:class:`SharedMemoryRef` it returns carries only the block's name and layout. Buffers that
support pickle protocol 5 out of band (NumPy arrays, ``pickle.PickleBuffer``) are loaded as
read-only views of the block, without a copy. MultiProcessEngine's ``share`` uses it.
"""

from __future__ import annotations

import os
import pickle
import sys
import threading
from multiprocessing import shared_memory
from typing import Any

from zoopipe_core.engines.shared import SharedRef

_ALIGNMENT = 64  # out-of-band buffers start on cache-line boundaries, as NumPy prefers

# Blocks attached in this process, with the object loaded from each: SharedRef.get() caches.
_attached: dict[str, tuple[shared_memory.SharedMemory, Any]] = {}
_attached_lock = threading.Lock()
# Blocks whose views a caller still holds after release; closing them would fail, and they
# are unmapped when the process exits.
_still_exported: list[shared_memory.SharedMemory] = []


def _aligned(offset: int) -> int:
    return -(-offset // _ALIGNMENT) * _ALIGNMENT


def _attach(name: str) -> shared_memory.SharedMemory:
    if sys.version_info >= (3, 13):
        # Only the creating engine may unlink the block, not a worker's resource tracker.
        return shared_memory.SharedMemory(name=name, track=False)
    return shared_memory.SharedMemory(name=name)


class SharedMemoryRef(SharedRef):
    """A handle to an object pickled into a shared-memory block by :meth:`MultiProcessEngine.share`.

    It carries only the block's name and layout. ``get()`` loads the object once per process;
    buffers that support pickle protocol 5 come back as read-only views of the block.

    Example:
        >>> import pickle
        >>> from zoopipe_core.engines import MultiProcessEngine
        >>> with MultiProcessEngine(max_workers=1) as engine:
        ...     ref = engine.share(bytes(10_000_000))
        ...     size = engine.submit(lambda r: len(r.get()), ref).result()
        >>> size, len(pickle.dumps(ref)) < 1000
        (10000000, True)
    """

    def __init__(self, name: str, pickle_size: int, buffer_spans: tuple[tuple[int, int], ...]):
        self._name = name
        self._pickle_size = pickle_size
        self._buffer_spans = buffer_spans

    @property
    def key(self) -> str:
        """The name of the shared-memory block."""
        return self._name

    def get(self) -> Any:
        with _attached_lock:
            if self._name in _attached:
                return _attached[self._name][1]
            try:
                block = _attach(self._name)
            except FileNotFoundError as exc:
                raise LookupError(
                    f"shared object {self._name!r} is gone: the engine that shared it was shut "
                    "down. Share the object again with engine.share() after start()"
                ) from exc
            assert block.buf is not None  # None only once the block is closed
            view = block.buf.toreadonly()
            buffers = [view[start : start + size] for start, size in self._buffer_spans]
            obj = pickle.loads(view[: self._pickle_size], buffers=buffers)
            _attached[self._name] = (block, obj)
            return obj

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self._name, self._pickle_size, self._buffer_spans))

    def __repr__(self) -> str:
        return f"<SharedMemoryRef {self._name}>"


def write_shared(obj: Any) -> tuple[shared_memory.SharedMemory, SharedMemoryRef]:
    """Pickle ``obj`` once into a new shared-memory block; the caller owns the block (close
    and unlink it to free it; multiprocessing's resource tracker unlinks it if this process
    dies) and hands the small :class:`SharedMemoryRef` to other processes.

    Example:
        >>> block, ref = write_shared({"rows": 3})
        >>> ref.get()
        {'rows': 3}
        >>> free_shared(block)
    """
    buffers: list[pickle.PickleBuffer] = []
    try:
        data = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
        raws = [buffer.raw() for buffer in buffers]
    except Exception as exc:
        raise TypeError(
            f"cannot share a {type(obj).__name__}: it does not pickle ({type(exc).__name__}: "
            f"{exc}). Share picklable data (bytes, arrays, dicts, models that pickle)"
        ) from exc
    spans, end = [], _aligned(len(data))
    for raw in raws:
        spans.append((end, raw.nbytes))
        end = _aligned(end + raw.nbytes)
    block = shared_memory.SharedMemory(create=True, size=max(end, 1))
    buf = block.buf
    assert buf is not None  # None only once the block is closed
    try:
        buf[: len(data)] = data
        for (start, size), raw in zip(spans, raws, strict=True):
            buf[start : start + size] = raw
    except BaseException:
        block.close()
        block.unlink()
        raise
    return block, SharedMemoryRef(block.name, len(data), tuple(spans))


def forget_attached(name: str) -> None:
    with _attached_lock:
        entry = _attached.pop(name, None)
    if entry is None:
        return
    block, _ = entry
    del entry
    try:
        block.close()
    except BufferError:
        _still_exported.append(block)


def free_shared(block: shared_memory.SharedMemory) -> None:
    """Free a block :func:`write_shared` made: forget this process's loaded copy, unmap the
    block and remove it (processes that attached it keep their mapping until they close it)."""
    forget_attached(block.name)
    block.close()
    block.unlink()


def _renew_lock_in_child() -> None:
    # A fork may happen while another thread holds the lock; the child has no such thread.
    global _attached_lock
    _attached_lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX only; Windows has no fork
    os.register_at_fork(after_in_child=_renew_lock_in_child)
