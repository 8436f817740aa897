"""Where shared weights live: Ray's object store, this machine's shared memory, or an engine's
``share`` (the :class:`~zoopipe_core.engines.SharedRef` each returns is what travels to workers).

Example:
    >>> import numpy as np
    >>> from unittest import mock
    >>> with mock.patch(f"{__name__}.ray_is_initialized", return_value=False):  # as without Ray
    ...     placed = place([np.arange(4, dtype=np.uint8)], engine=None)
    >>> placed.where, placed.ref.get()[0].tolist()
    ('shared memory on this machine', [0, 1, 2, 3])
    >>> placed.release()
"""

from __future__ import annotations

import atexit
import dataclasses
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any

from zoopipe_core.engines import Engine, SharedRef, free_shared, write_shared
from zoopipe_core.plugins import resolve_engine


def ray_is_initialized() -> bool:
    """True when this process is connected to Ray (only if Ray was imported: never imports it)."""
    ray = sys.modules.get("ray")
    return ray is not None and bool(ray.is_initialized())


class _RayObjectRef(SharedRef):
    """An object ``ray.put`` into the connected Ray cluster's object store (``engine=None`` with
    Ray initialised, as ray-zerocopy users call it). One copy per node, fetched by the first
    worker there that gets it.
    """

    def __init__(self, object_ref: Any):
        self._object_ref = object_ref
        self._key = str(object_ref.hex())

    @property
    def key(self) -> str:
        return self._key

    def get(self) -> Any:
        import ray

        if self._object_ref is None:
            raise LookupError(f"shared object {self._key} was released")
        return ray.get(self._object_ref)

    def free(self) -> None:
        """Drop this handle: Ray frees the object once no worker holds the wrapper either."""
        self._object_ref = None


@dataclasses.dataclass(eq=False)
class Placed:
    """Shared weights: the ``ref`` workers load, ``where`` they are, and how to free them.

    Example:
        >>> placed = place([b"weights"], engine="multiprocess")   # an engine made here, by name
        >>> placed.where, placed.engine.is_running
        ('MultiProcessEngine.share', True)
        >>> placed.release()                                        # shuts that engine down
        >>> placed.engine.is_running
        False
    """

    ref: SharedRef
    where: str
    _free: Callable[[], None] | None
    engine: Engine | None = None
    original: Any = None  # task mode: the caller's pipeline, whose models get stand-ins

    def release(self) -> None:
        free, self._free = self._free, None
        if free is not None:
            free()


# Shared-memory blocks this process made without an engine, unlinked at exit at the latest
# (and by multiprocessing's resource tracker if this process is killed).
_own_blocks: weakref.WeakSet[Placed] = weakref.WeakSet()
_own_lock = threading.Lock()


def place(obj: Any, engine: Engine | str | None) -> Placed:
    """Share ``obj`` (a list of arrays) once: with ``engine``'s ``share`` when one is given,
    else in Ray's object store when Ray is initialised, else in this machine's shared memory."""
    if engine is not None:
        chosen = resolve_engine(engine) if isinstance(engine, str) else engine
        if not isinstance(chosen, Engine):
            raise TypeError(f"engine must be an Engine, its name or None, got {type(engine).__name__}")
        if not chosen.shares_memory:
            raise ValueError(
                f"{type(chosen).__name__} gives each worker process its own copy of a shared "
                "object, so the weights would be copied per worker: use an engine that shares "
                "memory ('multiprocess', 'ray'), or engine=None"
            )
        ref = chosen.share(obj)
        # An engine made here from its name lives as long as the share; one given is the caller's.
        free = chosen.shutdown if isinstance(engine, str) else lambda: chosen.unshare(ref)
        return Placed(ref, f"{type(chosen).__name__}.share", free, chosen)
    if ray_is_initialized():
        import ray

        ray_ref = _RayObjectRef(ray.put(obj))
        return Placed(ray_ref, "Ray's object store", ray_ref.free)
    block, shm_ref = write_shared(obj)
    placed = Placed(shm_ref, "shared memory on this machine", lambda: free_shared(block))
    with _own_lock:
        _own_blocks.add(placed)
    return placed


@atexit.register
def _release_own_blocks() -> None:
    with _own_lock:
        placed = list(_own_blocks)
    for item in placed:
        item.release()
