"""MultiProcessEngine, the default engine: tasks run in worker processes on this machine.

How it works:

- At most ``max_workers`` worker processes at once; later submissions wait in a queue. A
  ``submit`` task runs in an idle worker when there is one (like ``multiprocessing.Pool``: a
  round trip costs well under a millisecond), else in a new one; a worker idle for 10 s exits.
  A ``submit_dedicated`` task (a pipe, a shard) gets a new process of its own, ended with it.
  On Linux processes are forked: they start in milliseconds, inherit every imported module,
  and a task may be a closure (it runs in a freshly forked worker, as it cannot be sent to an
  idle one). Forking is safe for pipes because the Rust executor creates its
  threads inside ``Pipe.run()``, in the child, never before the fork.
- Each task gets its own pipe back to the driver, carrying progress messages and then the
  result. One driver thread, the supervisor, starts processes, reads the pipes and watches the
  process sentinels, so a worker that dies (SIGKILL, ``os._exit``, a segfault) fails only its
  own future with WorkerLost, and cannot corrupt a channel other tasks use.
- ``share()`` pickles an object once into a ``multiprocessing.shared_memory`` block. Buffers
  that support pickle protocol 5 (NumPy arrays, ``pickle.PickleBuffer``) are loaded as
  read-only views of that block, without a copy.
- Each task is granted ``usable CPUs / max_workers`` CPUs (:func:`~zoopipe_core.engines.task_cpus`):
  with the default ``max_workers``, one each, so a pipe runs on one thread instead of competing
  with the other workers through helper threads.
- Stopping a task (``cancel``, ``shutdown``) sends SIGTERM, which raises inside the task so its
  ``finally`` blocks run (a pipe aborts its output), then SIGKILL once the grace period ends.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import pickle
import sys
import threading
import weakref
from collections.abc import Callable
from multiprocessing import shared_memory
from typing import Any

from zoopipe_core.engines.engine import Engine
from zoopipe_core.engines.environment import WorkerEnvironment
from zoopipe_core.engines.errors import callable_name
from zoopipe_core.engines.main_guard import refuse_unguarded_main
from zoopipe_core.engines.process_pool import PoolTask, ProcessPool
from zoopipe_core.engines.resources import usable_cpus
from zoopipe_core.engines.shared import SharedRef
from zoopipe_core.engines.shared_memory import SharedMemoryRef, free_shared, write_shared

__all__ = ["MultiProcessEngine", "SharedMemoryRef", "usable_cpus"]


def _default_start_method() -> str:
    return "fork" if sys.platform.startswith("linux") else "spawn"


# Running engines, for a forked child to renew their locks. (Shutting them down at exit is the
# engines' common exit hook, in engines/engine.py.)
_live_engines: weakref.WeakSet[MultiProcessEngine] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # A fork may happen while another driver thread holds one of these locks; the child has no
    # such thread, so it gets fresh ones. Inherited engines then refuse work with a clear error.
    for engine in list(_live_engines):
        engine.renew_locks()


if hasattr(os, "register_at_fork"):  # POSIX only; Windows has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)


class MultiProcessEngine(Engine):
    """Runs tasks in worker processes on this machine; the default engine (``"multiprocess"``).

    ``max_workers`` (default: the CPUs this process may run on, :func:`usable_cpus`) processes
    run at once; further submissions queue. ``submit`` reuses idle worker processes (as a
    ``multiprocessing.Pool`` does); ``submit_dedicated`` gives the task a process of its own. ``mp_context`` is the start method: ``"fork"`` on
    Linux (fast; tasks may be closures), ``"spawn"`` elsewhere (tasks and arguments must
    pickle). A worker that dies fails only its own future, with :class:`WorkerLost`. See the
    module docstring.

    Example:
        >>> from zoopipe_core.engines import MultiProcessEngine, report_progress
        >>> def double(n):
        ...     report_progress(f"task-{n}", {"rows": n})
        ...     return 2 * n
        >>> with MultiProcessEngine(max_workers=2) as engine:
        ...     futures = [engine.submit(double, n) for n in range(3)]
        ...     [future.result() for future in futures]
        [0, 2, 4]
        >>> sorted(engine.progress().items())
        [('task-0', {'rows': 0}), ('task-1', {'rows': 1}), ('task-2', {'rows': 2})]
    """

    name = "multiprocess"
    shares_memory = True  # a shared-memory block per object

    def __init__(self, max_workers: int | None = None, mp_context: str | None = None) -> None:
        super().__init__()
        if max_workers is None:
            max_workers = usable_cpus()
        if not isinstance(max_workers, int) or max_workers < 1:
            raise ValueError(f"max_workers must be a positive int, got {max_workers!r}")
        self.max_workers = max_workers
        method = mp_context or _default_start_method()
        if method not in multiprocessing.get_all_start_methods():
            raise ValueError(
                f"mp_context={method!r} is not a start method on this platform; choose one of "
                f"{', '.join(multiprocessing.get_all_start_methods())}"
            )
        self.mp_context = method
        self._context = multiprocessing.get_context(method)
        self._supervisor: ProcessPool | None = None
        self._shared: list[shared_memory.SharedMemory] = []

    def __repr__(self) -> str:
        return (
            f"<MultiProcessEngine max_workers={self.max_workers} mp_context={self.mp_context!r} "
            f"{self._state}>"
        )

    def _start(self) -> None:
        # Spawned (and forkserver) workers import the main script again: refuse an unguarded one.
        refuse_unguarded_main(
            f"MultiProcessEngine(mp_context={self.mp_context!r})",
            self.mp_context,
            "on Linux pass mp_context='fork'" if "fork" in multiprocessing.get_all_start_methods() else "",
        )
        self._supervisor = ProcessPool(
            self._context, self.max_workers, self._record_progress, self.cancel_grace
        )
        _live_engines.add(self)

    def _shutdown(self, timeout: float) -> None:
        self._owned_supervisor("shut down")  # a worker must not unlink its driver's objects
        assert self._supervisor is not None
        self._supervisor.close(timeout)
        self._supervisor = None
        _live_engines.discard(self)
        shared, self._shared = self._shared, []
        for block in shared:
            free_shared(block)

    def _prepare(self, environment: WorkerEnvironment) -> None:
        # Workers run in this machine's interpreter, so requirements are already installed
        # and nothing is uploaded; code paths must exist, and are put on sys.path in workers.
        environment.resolved_code_paths()

    def _submit(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> concurrent.futures.Future[Any]:
        return self._queue_task(fn, args, kwargs, reusable=True)

    def _submit_dedicated(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> concurrent.futures.Future[Any]:
        return self._queue_task(fn, args, kwargs, reusable=False)

    def _queue_task(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], reusable: bool
    ) -> concurrent.futures.Future[Any]:
        supervisor = self._owned_supervisor("submit a task")
        name = callable_name(fn)
        work: Any = (fn, args, kwargs)
        pickled = self.mp_context != "fork"
        if pickled:
            # Pickle now, so an unpicklable task fails here rather than in a worker.
            try:
                work = pickle.dumps(work, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as exc:
                raise TypeError(
                    f"cannot send {name} to a worker process: {type(exc).__name__}: {exc}. With "
                    f"mp_context={self.mp_context!r} the function and its arguments are pickled: "
                    "define the function at module level (no lambda or closure), or use "
                    "mp_context='fork' on Linux"
                ) from exc
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        supervisor.submit(PoolTask(future, name, work, pickled, self.environment, reusable=reusable))
        return future

    def _capacity(self) -> int:
        return self.max_workers

    def _cancel(self, future: concurrent.futures.Future[Any]) -> bool:
        # The future stays pending while its task runs; the supervisor stops the process.
        return future.cancel()

    def _share(self, obj: Any) -> SharedRef:
        self._owned_supervisor("share an object")
        block, ref = write_shared(obj)
        self._shared.append(block)
        return ref

    def _unshare(self, ref: SharedRef) -> None:
        self._owned_supervisor("free a shared object")
        for block in [block for block in self._shared if block.name == ref.key]:
            self._shared.remove(block)
            free_shared(block)

    def renew_locks(self) -> None:
        """Give this engine new locks: called in a forked child, where a lock held by another
        thread of the parent at the fork would stay held forever."""
        self._lifecycle = threading.RLock()
        self._progress_lock = threading.Lock()
        self._outstanding_lock = threading.Lock()

    def _owned_supervisor(self, action: str) -> ProcessPool:
        assert self._supervisor is not None
        if self._supervisor.owner_pid != os.getpid():
            raise RuntimeError(
                f"cannot {action}: this MultiProcessEngine was started in process "
                f"{self._supervisor.owner_pid} and this is its worker {os.getpid()}. Create a "
                "new engine inside the task instead"
            )
        return self._supervisor
