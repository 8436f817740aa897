"""The Ray side of RayEngine: the task wrapper, the pipe actor, the progress sink actor and
shared objects.

This module runs in Ray workers. It imports Ray only inside functions, so importing it stays
cheap; the engine turns these functions and classes into Ray tasks and actors when it starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from typing import Any

from zoopipe_core.engines import (
    NativeBuild,
    Outcome,
    SharedRef,
    TaskProgress,
    WorkerInfo,
    interrupt_call,
    native_build,
    prime_worker,
    run_call,
)


def worker_build() -> tuple[str, NativeBuild]:
    """This worker's host and zoopipe build, for the start-up handshake."""
    import socket

    return socket.gethostname(), native_build()


def assigned_cpus() -> float | None:
    """The CPUs Ray assigned to the running task or actor (its ``num_cpus``); None outside Ray."""
    import ray

    if not ray.is_initialized():
        return None
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
    return cpus or None


def this_worker() -> WorkerInfo:
    """The Ray worker running here, for :func:`~zoopipe_core.engines.current_worker`."""
    import ray
    import ray.util

    context = ray.get_runtime_context()
    return WorkerInfo(
        "ray", context.get_worker_id(), context.get_node_id(), ray.util.get_node_ip_address(), os.getpid()
    )


# The progress sink actors this process has looked up, by name.
_sinks: dict[str, Any] = {}


def progress_sink(name: str) -> Any:
    """The engine's progress sink actor named ``name``, looked up once per process: tasks carry
    the name, not the handle (a handle in each task's arguments costs about 0.5 ms a task)."""
    sink = _sinks.get(name)
    if sink is None:
        import ray

        sink = _sinks[name] = ray.get_actor(name)
    return sink


def run_task(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], sink: str, token: str) -> Outcome:
    """Run one submitted callable with :func:`~zoopipe_core.engines.run_call`; its progress goes
    to the sink actor named ``sink``, numbered, without waiting. The
    :class:`~zoopipe_core.engines.Outcome` is returned, not raised, so the driver rebuilds the
    original exception itself and records the task's last payloads before resolving the future."""

    def forward(sequence: int, key: str, payload: dict[str, Any]) -> None:
        progress_sink(sink).report.remote(token, sequence, key, payload)

    return run_call(
        fn,
        args,
        kwargs,
        token=token,
        worker=this_worker(),
        progress=TaskProgress(forward),
        cpus=assigned_cpus(),
    )


class RayPipeWorker:
    """The Ray actor that runs one pipe (one ``submit_dedicated`` call) for RayEngine.

    The engine creates one per call, with its ``num_cpus`` and ``memory``, calls :meth:`run`
    once and kills the actor when the call has finished. :meth:`interrupt`, called in the
    ``CONTROL_GROUP`` concurrency group so it runs beside a running :meth:`run`, raises
    KeyboardInterrupt in it: the polite stop of a cancel (``ray.cancel`` only flags a running
    actor call).

    Example (as a plain object; the engine runs it as a Ray actor):
        >>> RayPipeWorker().interrupt("no-such-task")
        False
    """

    def run(self, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], sink: str, token: str) -> Outcome:
        """:func:`run_task` in this actor."""
        return run_task(fn, args, kwargs, sink, token)

    def prime(self, prime: Any = prime_worker, modules: tuple[str, ...] = ()) -> int:
        """Load zoopipe's native module and ``modules`` here before a call arrives (``prime``,
        by default :func:`~zoopipe_core.engines.prime_worker`); returns this actor's pid."""
        return int(prime(modules))

    def build(self) -> tuple[str, NativeBuild]:
        """This actor's host and zoopipe build (see :func:`worker_build`)."""
        return worker_build()

    def interrupt(self, token: str) -> bool:
        """Raise KeyboardInterrupt (what ``ray.cancel`` raises in a task) in the running call
        ``token``; False when it does not run here."""
        return interrupt_call(token, KeyboardInterrupt)


#: The concurrency group :meth:`RayPipeWorker.interrupt` runs in, beside ``run``.
CONTROL_GROUP = "control"

_remote_pipe_worker: Any = None


def remote_pipe_worker() -> Any:
    """RayPipeWorker as a Ray actor class, made on first use (so importing this module never
    imports Ray). One attempt only: Ray neither restarts the actor nor retries its calls."""
    global _remote_pipe_worker
    if _remote_pipe_worker is None:
        import ray

        remote: Any = ray.remote  # Ray's overloads do not list concurrency_groups
        _remote_pipe_worker = remote(
            max_restarts=0, max_task_retries=0, concurrency_groups={CONTROL_GROUP: 1}
        )(RayPipeWorker)
    return _remote_pipe_worker


class ProgressSink:
    """A small async actor that buffers progress payloads until the driver takes them.

    Tasks call ``report`` without waiting; the driver long-polls ``take``. Payloads carry
    the task's token and a per-task sequence number, so the driver drops stale ones.

    Example (as a plain object; the engine runs it as a Ray actor):
        >>> import asyncio
        >>> sink = ProgressSink()
        >>> asyncio.run(sink.report("task-1", 1, "shard-0", {"rows": 10}))
        >>> asyncio.run(sink.take(timeout=0.1))
        [('task-1', 1, 'shard-0', {'rows': 10})]
        >>> asyncio.run(sink.take(timeout=0.01))
        []
    """

    def __init__(self) -> None:
        self._items: list[tuple[str, int, str, dict[str, Any]]] = []
        self._event = asyncio.Event()

    async def report(self, token: str, sequence: int, key: str, payload: dict[str, Any]) -> None:
        self._items.append((token, sequence, key, payload))
        self._event.set()

    async def take(self, timeout: float) -> list[tuple[str, int, str, dict[str, Any]]]:
        if not self._items:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._event.wait(), timeout)
        items, self._items = self._items, []
        self._event.clear()
        return items


# Objects loaded in this process by RayRef.get(), by key: loaded once per process.
_loaded: dict[str, Any] = {}
_loaded_lock = threading.Lock()


class RayRef(SharedRef):
    """A handle to an object :meth:`RayEngine.share` put in Ray's object store.

    It holds the Ray ``ObjectRef``; ``get()`` calls ``ray.get`` once per process and caches the
    object. NumPy arrays come back as read-only, zero-copy views of the node's object store.

    Example:
        >>> from zoopipe_ray import RayEngine
        >>> with RayEngine() as engine:
        ...     ref = engine.share(list(range(1000)))
        ...     engine.submit(lambda r: sum(r.get()), ref).result()
        499500
    """

    def __init__(self, object_ref: Any) -> None:
        self._object_ref = object_ref
        self._released = False

    @property
    def key(self) -> str:
        """The hex id of the Ray object."""
        return self._object_ref.hex()

    def get(self) -> Any:
        import ray
        import ray.exceptions

        key = self.key
        with _loaded_lock:
            if key in _loaded:
                return _loaded[key]
        if self._released or not ray.is_initialized():
            raise LookupError(
                f"shared object {key} is gone: the RayEngine that shared it was shut down. "
                "Share the object again with engine.share() after start()"
            )
        try:
            obj = ray.get(self._object_ref)
        except (ray.exceptions.ObjectLostError, ray.exceptions.ReferenceCountingAssertionError) as exc:
            raise LookupError(
                f"shared object {key} is gone from Ray's object store ({type(exc).__name__}); "
                "the RayEngine that shared it was shut down or its node died. Share it again"
            ) from exc
        with _loaded_lock:
            return _loaded.setdefault(key, obj)

    def release(self) -> None:
        """Forget the object in this process; ``get()`` raises LookupError afterwards (the
        engine calls it at shutdown)."""
        self._released = True
        with _loaded_lock:
            _loaded.pop(self.key, None)

    def __getstate__(self) -> dict[str, Any]:
        return {"_object_ref": self._object_ref, "_released": False}

    def __repr__(self) -> str:
        return f"<RayRef {self.key}>"
