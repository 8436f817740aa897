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
import time
from typing import Any

from zoopipe_core.engines import (
    NativeBuild,
    Outcome,
    SharedRef,
    TaskProgress,
    WorkerInfo,
    host_build,
    interrupt_call,
    prime_worker,
    run_call,
)


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
    to the sink actor named ``sink``, numbered, without waiting, and the engine's stop requests
    for it come from there (see :class:`StopListener`). The
    :class:`~zoopipe_core.engines.Outcome` is returned, not raised, so the driver rebuilds the
    original exception itself and records the task's last payloads before resolving the future."""

    def forward(sequence: int, key: str, payload: dict[str, Any]) -> None:
        progress_sink(sink).report.remote(token, sequence, key, payload)

    _stop_listener.watch(token, sink)
    try:
        return run_call(
            fn,
            args,
            kwargs,
            token=token,
            worker=this_worker(),
            progress=TaskProgress(forward),
            cpus=assigned_cpus(),
        )
    finally:
        _stop_listener.forget(token)


#: Stop levels an engine asks of a running call through its sink.
STOP, KILL = 1, 2

#: A call still running after this many seconds listens for stop requests: a shorter one ends
#: before a stop would matter, and costs nothing more.
STOP_LISTEN_AFTER = 0.05

#: Seconds one poll of the sink waits for a stop request.
STOP_POLL = 0.25

#: Exit code of a worker process a KILL request ended.
KILLED_EXIT_CODE = 137


class StopListener:
    """Carries the engine's stop requests to the calls running in this worker process.

    ``ray.cancel`` of a task can abort the driver when it races the task's reply (Ray 2.60,
    ``task_manager.cc``: "Tried to complete task that was not pending"), so RayEngine does not
    use it to stop work: it files a request with its progress sink, and one thread per worker
    process long-polls the sink for the calls that have run longer than
    ``STOP_LISTEN_AFTER``. STOP raises KeyboardInterrupt in the call (what ``ray.cancel``
    raised), KILL ends the process; a sink that is gone means its engine is, and its calls
    are stopped.

    Example (no call runs, so nothing is polled):
        >>> listener = StopListener()
        >>> listener.watch("task-1", "no-such-sink")
        >>> listener.forget("task-1")
        >>> listener.watched()
        {}
    """

    def __init__(self) -> None:
        self._calls: dict[str, tuple[str, float]] = {}  # token -> (sink name, started)
        self._asked: dict[str, int] = {}  # token -> the stop level already acted on
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, token: str, sink: str) -> None:
        with self._changed:
            self._calls[token] = (sink, time.monotonic())
            if self._thread is None:
                self._thread = threading.Thread(target=self._listen, daemon=True, name="zoopipe-stops")
                self._thread.start()
            self._changed.notify()

    def forget(self, token: str) -> None:
        with self._changed:
            self._calls.pop(token, None)
            self._asked.pop(token, None)

    def watched(self) -> dict[str, str]:
        """The calls being listened for now, as token -> sink name."""
        with self._changed:
            return {token: sink for token, (sink, _) in self._calls.items()}

    def _due(self) -> dict[str, dict[str, int]]:
        """Wait for calls that have run ``STOP_LISTEN_AFTER``; by sink, token -> level acted on."""
        with self._changed:
            while True:
                now = time.monotonic()
                due: dict[str, dict[str, int]] = {}
                wait = None
                for token, (sink, started) in self._calls.items():
                    if now - started >= STOP_LISTEN_AFTER:
                        due.setdefault(sink, {})[token] = self._asked.get(token, 0)
                    else:
                        left = started + STOP_LISTEN_AFTER - now
                        wait = left if wait is None else min(wait, left)
                if due:
                    return due
                self._changed.wait(timeout=wait)

    def _listen(self) -> None:
        import ray

        while True:
            due = self._due()
            for sink, seen in due.items():
                try:
                    requests = ray.get(progress_sink(sink).stops_for.remote(seen, STOP_POLL / len(due)))
                except Exception:  # the sink is gone, and with it the engine that wanted these calls
                    _sinks.pop(sink, None)
                    requests = {token: STOP for token, level in seen.items() if level < STOP}
                    if not requests:
                        time.sleep(STOP_POLL)
                self._act(requests)

    def _act(self, requests: dict[str, int]) -> None:
        for token, level in requests.items():
            with self._changed:
                if token not in self._calls:
                    continue  # it ended meanwhile
                self._asked[token] = level
            if level >= KILL:
                os._exit(KILLED_EXIT_CODE)
            interrupt_call(token, KeyboardInterrupt)


_stop_listener = StopListener()


class RayPipeWorker:
    """The Ray actor that runs pipes (``submit_dedicated``) and the calls of RayEngine's readied
    pool.

    The engine creates one with its ``num_cpus`` and ``memory``. It is a plain sequential actor
    (no concurrency groups): Ray then runs its calls one at a time in the order the driver
    submitted them, which the engine relies on to know, when the actor dies, which call was
    running and which never started. A cancel reaches a running call through the progress
    sink (see :class:`StopListener`), as for tasks.

    Example (as a plain object; the engine runs it as a Ray actor):
        >>> RayPipeWorker().build()[1].version != ""
        True
    """

    def run(self, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], sink: str, token: str) -> Outcome:
        """:func:`run_task` in this actor."""
        return run_task(fn, args, kwargs, sink, token)

    def prime(self, prime: Any = prime_worker, modules: tuple[str, ...] = ()) -> int:
        """Load zoopipe's native module and ``modules`` here before a call arrives (``prime``,
        by default :func:`~zoopipe_core.engines.prime_worker`); returns this actor's pid."""
        return int(prime(modules))

    def build(self) -> tuple[str, NativeBuild]:
        """This actor's host and zoopipe build (see :func:`~zoopipe_core.engines.host_build`)."""
        return host_build()


_remote_pipe_worker: Any = None


def remote_pipe_worker() -> Any:
    """RayPipeWorker as a Ray actor class, made on first use (so importing this module never
    imports Ray). One attempt only: Ray neither restarts the actor nor retries its calls."""
    global _remote_pipe_worker
    if _remote_pipe_worker is None:
        import ray

        _remote_pipe_worker = ray.remote(max_restarts=0, max_task_retries=0)(RayPipeWorker)
    return _remote_pipe_worker


class ProgressSink:
    """A small async actor that buffers progress payloads until the driver takes them, and
    holds the driver's stop requests until the calls' workers take them.

    Tasks call ``report`` without waiting; the driver long-polls ``take``. Payloads carry
    the task's token and a per-task sequence number, so the driver drops stale ones. The
    driver files ``request_stop``; each worker's :class:`StopListener` long-polls ``stops_for``.

    Example (as a plain object; the engine runs it as a Ray actor):
        >>> import asyncio
        >>> sink = ProgressSink()
        >>> asyncio.run(sink.report("task-1", 1, "shard-0", {"rows": 10}))
        >>> asyncio.run(sink.take(timeout=0.1))
        [('task-1', 1, 'shard-0', {'rows': 10})]
        >>> asyncio.run(sink.take(timeout=0.01))
        []
        >>> asyncio.run(sink.request_stop("task-1", STOP))
        >>> asyncio.run(sink.stops_for({"task-1": 0, "task-2": 0}, timeout=0.01))
        {'task-1': 1}
    """

    def __init__(self) -> None:
        self._items: list[tuple[str, int, str, dict[str, Any]]] = []
        self._event = asyncio.Event()
        self._stops: dict[str, int] = {}  # token -> the stop level the engine asked for
        self._stops_changed = asyncio.Event()

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

    async def request_stop(self, token: str, level: int) -> None:
        """Ask the call ``token`` to stop (``STOP``) or its process to end (``KILL``)."""
        if level > self._stops.get(token, 0):
            self._stops[token] = level
            self._stops_changed.set()
            self._stops_changed = asyncio.Event()

    async def stops_for(self, seen: dict[str, int], timeout: float) -> dict[str, int]:
        """The stop levels asked for these calls above the level each has ``seen``, waiting up
        to ``timeout`` seconds for one."""

        def news() -> dict[str, int]:
            return {token: self._stops[token] for token in seen if self._stops.get(token, 0) > seen[token]}

        found = news()
        if not found:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stops_changed.wait(), timeout)
            found = news()
        return found

    async def forget_stops(self, tokens: list[str]) -> None:
        """Drop the stop requests of calls that have ended."""
        for token in tokens:
            self._stops.pop(token, None)


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
