"""The worker side of DaskEngine: the task wrapper, stop requests, the environment plugin and
shared objects.

This module runs in Dask workers. It imports ``distributed`` only inside functions, so
importing it stays cheap.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import signal
import threading
from typing import Any

from zoopipe_core.engines import (
    Outcome,
    SharedRef,
    StopRequested,
    TaskProgress,
    WorkerInfo,
    interrupt_call,
    run_call,
    running_calls,
)

#: A Dask task runs on one of its worker's threads: one core's worth.
TASK_CPUS = 1.0

#: The event topic tasks report progress on; the engine subscribes to its own topic name.
TOPIC_PREFIX = "zoopipe-progress-"


@dataclasses.dataclass(frozen=True)
class RefusedRerun:
    """What :func:`run_task` returns instead of running a task whose worker died on an earlier
    attempt (Dask rescheduled it): the address of the worker that refused it.

    Example:
        >>> RefusedRerun("tcp://10.0.0.5:40000").worker
        'tcp://10.0.0.5:40000'
    """

    worker: str


#: The scheduler attribute where :func:`_lost_on_previous_attempt` records the keys of tasks that
#: started (oldest first, the last STARTED_REMEMBERED): a task Dask cancels after its worker died
#: ran only if it started (see DaskEngine._after_cancellation).
STARTED_ATTRIBUTE = "_zoopipe_started_keys"
STARTED_REMEMBERED = 100_000


def _lost_on_previous_attempt(key: Any) -> bool:
    """True when the scheduler saw a worker die while it ran this task: this is a re-run.

    The same call records on the scheduler that the task starts, before any user code runs.
    """
    from distributed import get_client

    def suspicious(key: Any, attribute: str, remembered: int, dask_scheduler: Any = None) -> int:
        import collections

        started = getattr(dask_scheduler, attribute, None)
        if started is None:
            started = collections.OrderedDict()
            setattr(dask_scheduler, attribute, started)
        started[key] = None
        while len(started) > remembered:
            started.popitem(last=False)
        task = dask_scheduler.tasks.get(key)
        return 0 if task is None else task.suspicious

    return get_client().run_on_scheduler(suspicious, key, STARTED_ATTRIBUTE, STARTED_REMEMBERED) > 0


def this_worker(worker: Any) -> WorkerInfo:
    """The Dask worker ``worker`` (this process's), for :func:`~zoopipe_core.engines.current_worker`."""
    from distributed.comm import get_address_host

    host = get_address_host(worker.address)
    return WorkerInfo("dask", worker.address, host, host, os.getpid())


def run_task(
    fn: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    topic: str,
    token: str,
    guard_reruns: bool,
    shared: list[Any],
) -> Outcome | RefusedRerun:
    """Run one submitted callable with :func:`~zoopipe_core.engines.run_call`; its progress goes
    out as Dask events on ``topic``, numbered.

    Returns the :class:`~zoopipe_core.engines.Outcome` (``stopped`` when the engine stopped it),
    or :class:`RefusedRerun` when this is Dask re-running a task whose worker died. ``shared``
    holds the objects of the DaskRefs among the arguments: passing them as dependencies makes
    Dask copy them to this worker before the task starts.
    """
    from distributed import get_worker

    worker = get_worker()
    if guard_reruns and _lost_on_previous_attempt(worker.get_current_task()):
        return RefusedRerun(worker.address)

    def forward(sequence: int, key: str, payload: dict[str, Any]) -> None:
        message = {"token": token, "sequence": sequence, "key": key, "payload": pickle.dumps(payload)}
        worker.log_event(topic, message)

    return run_call(
        fn,
        args,
        kwargs,
        token=token,
        worker=this_worker(worker),
        progress=TaskProgress(forward),
        cpus=TASK_CPUS,
        where=f"pid {os.getpid()} ({worker.address})",
    )


def stop_task(token: str, force: bool) -> bool:
    """Run on every worker by ``client.run``: stop the task ``token`` if it runs here.

    Politely, StopRequested is raised in the task's thread; with ``force``, the worker process
    is killed (its nanny starts a new one). Returns True when the task was found here.
    """
    if not force:
        return interrupt_call(token, StopRequested)
    if not running_calls([token]):
        return False
    # Reply first, then die: the driver's client.run gets an answer, the nanny a dead process.
    threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGKILL)).start()
    return True


def running_tokens(tokens: list[str]) -> list[str]:
    """Run on every worker by ``client.run``: those of ``tokens`` whose task runs here."""
    return running_calls(tokens)


# Objects loaded in this process by DaskRef.get(), by key: loaded once per process.
_loaded: dict[str, Any] = {}
_loaded_lock = threading.Lock()


class DaskRef(SharedRef):
    """A handle to an object :meth:`DaskEngine.share` scattered to every Dask worker.

    It holds only the data's key. ``get()`` takes the object from the worker's memory (or
    gathers it, on a worker that joined later) once per process.

    Example:
        >>> from zoopipe_dask import DaskEngine
        >>> with DaskEngine() as engine:
        ...     ref = engine.share(list(range(1000)))
        ...     engine.submit(lambda r: sum(r.get()), ref).result()
        499500
    """

    def __init__(self, key: str) -> None:
        self._key = key
        self._released = False

    @property
    def key(self) -> str:
        """The key of the scattered data in the Dask cluster."""
        return self._key

    def get(self) -> Any:
        with _loaded_lock:
            if self._key in _loaded:
                return _loaded[self._key]
        if self._released:
            raise self._gone("the DaskEngine that shared it was shut down")
        from distributed import Future, get_client, get_worker

        try:
            worker = get_worker()
        except ValueError:
            worker = None  # the driver, or a plain process
        if worker is not None and self._key in worker.data:
            obj = worker.data[self._key]
        else:
            try:
                obj = Future(self._key, get_client()).result(timeout=60)
            except Exception as exc:
                raise self._gone(f"{type(exc).__name__}: {exc}") from exc
        with _loaded_lock:
            return _loaded.setdefault(self._key, obj)

    def _gone(self, why: str) -> LookupError:
        return LookupError(
            f"shared object {self._key!r} is gone ({why}). Share it again with engine.share() after start()"
        )

    def release(self) -> None:
        """Forget the object in this process; ``get()`` raises LookupError afterwards (the
        engine calls it at shutdown)."""
        self._released = True
        with _loaded_lock:
            _loaded.pop(self._key, None)

    def __getstate__(self) -> dict[str, Any]:
        return {"_key": self._key, "_released": False}

    def __repr__(self) -> str:
        return f"<DaskRef {self._key}>"
