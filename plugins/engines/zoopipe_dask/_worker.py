"""The worker side of DaskEngine: the task wrapper, stop requests, the environment plugin and
shared objects.

This module runs in Dask workers. It imports ``distributed`` only inside functions, so
importing it stays cheap.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import pickle
import signal
import sys
import threading
from typing import Any

from zoopipe_core.engines.base import RemoteError, SharedRef, progress_channel
from zoopipe_core.engines.resources import granted_cpus

#: A Dask task runs on one of its worker's threads: one core's worth.
TASK_CPUS = 1.0

#: The event topic tasks report progress on; the engine subscribes to its own topic name.
TOPIC_PREFIX = "zoopipe-progress-"


class StopRequested(BaseException):
    """Raised inside a running task when its engine cancels it or shuts down.

    A BaseException, so ``except Exception`` in the task does not swallow it.

    Example:
        >>> try:
        ...     raise StopRequested()
        ... except Exception:
        ...     print("swallowed")
        ... except BaseException:
        ...     print("stopped")
        stopped
    """


# token -> thread id of the running task, in this worker process.
_running: dict[str, int] = {}
_running_lock = threading.Lock()


def _lost_on_previous_attempt(key: Any) -> bool:
    """True when the scheduler saw a worker die while it ran this task: this is a re-run."""
    from distributed import get_client

    def suspicious(key: Any, dask_scheduler: Any = None) -> int:
        task = dask_scheduler.tasks.get(key)
        return 0 if task is None else task.suspicious

    return get_client().run_on_scheduler(suspicious, key) > 0


def run_task(
    fn: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    topic: str,
    token: str,
    guard_reruns: bool,
    shared: list[Any],
) -> tuple[Any, ...]:
    """Run one submitted callable inside :func:`progress_channel`; describe how it ended.

    Returns ``("ok", value, latest)``, ``("error", RemoteError, pickled original or None,
    latest)``, ``("lost", worker)`` when this is Dask re-running a task whose worker died, or
    ``("stopped", latest)`` when the engine stopped it. ``latest`` maps each progress key to
    ``(sequence, payload)`` so the driver records the last payload before the result.
    ``shared`` holds the objects of the DaskRefs among the arguments: passing them as
    dependencies makes Dask copy them to this worker before the task starts.
    """
    from distributed import get_worker

    worker = get_worker()
    if guard_reruns and _lost_on_previous_attempt(worker.get_current_task()):
        return ("lost", worker.address)
    counter = itertools.count(1)
    latest: dict[str, tuple[int, dict[str, Any]]] = {}
    lock = threading.Lock()

    def send(key: str, payload: dict[str, Any]) -> None:
        with lock:
            sequence = next(counter)
            latest[key] = (sequence, payload)
        message = {"token": token, "sequence": sequence, "key": key,
                   "payload": pickle.dumps(payload)}
        worker.log_event(topic, message)

    try:
        try:
            with _running_lock:
                _running[token] = threading.get_ident()
            with granted_cpus(TASK_CPUS), progress_channel(send):
                value = fn(*args, **kwargs)
        finally:
            with _running_lock:
                _running.pop(token, None)
    except StopRequested:
        return ("stopped", latest)
    except BaseException as exc:
        tb = exc.__traceback__
        if tb is not None and tb.tb_frame.f_code is run_task.__code__:
            exc = exc.with_traceback(tb.tb_next)  # the traceback starts in the user's code
        remote = RemoteError.from_exception(exc, worker=f"pid {os.getpid()} ({worker.address})")
        try:
            original: bytes | None = pickle.dumps(exc)
        except Exception:
            original = None  # the driver raises the RemoteError itself
        return ("error", remote, original, latest)
    return ("ok", value, latest)


def stop_task(token: str, force: bool) -> bool:
    """Run on every worker by ``client.run``: stop the task ``token`` if it runs here.

    Politely, StopRequested is raised in the task's thread; with ``force``, the worker process
    is killed (its nanny starts a new one). Returns True when the task was found here.
    """
    with _running_lock:
        ident = _running.get(token)
        if ident is None:
            return False
        if not force:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(ident), ctypes.py_object(StopRequested)
            )
            return True
    # Reply first, then die: the driver's client.run gets an answer, the nanny a dead process.
    threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGKILL)).start()
    return True


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
            f"shared object {self._key!r} is gone ({why}). Share it again with engine.share() "
            "after start()"
        )

    def _release(self) -> None:
        self._released = True
        with _loaded_lock:
            _loaded.pop(self._key, None)

    def __getstate__(self) -> dict[str, Any]:
        return {"_key": self._key, "_released": False}

    def __repr__(self) -> str:
        return f"<DaskRef {self._key}>"
