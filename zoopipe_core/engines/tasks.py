"""The task protocol: how every engine runs a callable on a worker and says how it ended.

Worker side, the same for every engine:

- :func:`run_call` runs ``fn(*args, **kwargs)`` with the CPUs the engine granted it, its
  progress channel and its :class:`WorkerInfo`, and returns an :class:`Outcome` rather than
  raising: the value, or a :class:`~zoopipe_core.engines.RemoteError` with the original exception
  pickled when it can be, and a traceback that starts in the user's code.
- :class:`TaskProgress` numbers the task's progress payloads and keeps the latest per key, so
  the driver can merge payloads that arrive late or twice (``Engine._offer_progress``).
- A running call is registered by its token: :func:`interrupt_call` raises an exception in its
  thread (the polite stop of a cancel), :func:`running_calls` says which still run here.

Driver side, :meth:`Outcome.settle` resolves the task's future. Engine plugins keep only what is
specific to their cluster: how the call travels, how progress reaches the driver, how a worker
is killed once the engine's ``cancel_grace`` (:data:`CANCEL_GRACE` by default) has passed.

Example:
    >>> from zoopipe_core.engines import report_progress
    >>> def task(n):
    ...     report_progress("rows", {"done": n})
    ...     return 2 * n
    >>> sent = []
    >>> progress = TaskProgress(lambda sequence, key, payload: sent.append((sequence, key)))
    >>> outcome = run_call(task, (21,), {}, token="t1", progress=progress,
    ...                    worker=WorkerInfo.local("example"))
    >>> outcome.result(), sent, outcome.progress
    (42, [(1, 'rows')], {'rows': (1, {'done': 21})})
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import ctypes
import dataclasses
import itertools
import os
import pickle
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

from zoopipe_core.engines.errors import RemoteError, rebuild_failure
from zoopipe_core.engines.progress import progress_channel
from zoopipe_core.engines.resources import granted_cpus

#: Seconds a cancelled task has to stop after it was asked to before its worker is killed.
CANCEL_GRACE = 5.0

#: The latest progress of one task: key -> (sequence number, payload).
LatestProgress = dict[str, tuple[int, dict[str, Any]]]


class StopRequested(BaseException):
    """Raised inside a running task when its engine cancels it or shuts down.

    A BaseException, so ``except Exception`` in the task does not swallow it, while its
    ``finally`` blocks run (a pipe aborts its output).

    Example:
        >>> try:
        ...     raise StopRequested()
        ... except Exception:
        ...     print("swallowed")
        ... except BaseException:
        ...     print("stopped")
        stopped
    """


# --------------------------------------------------------------------------- where a task runs


@dataclasses.dataclass(frozen=True)
class WorkerInfo:
    """Where a task runs: its engine's name, its worker, that worker's node, host and pid.

    ``worker_id`` names the worker within its engine (a pid for MultiProcessEngine, Ray's worker
    id, a Dask worker's address); ``node_id`` the machine as the engine knows it (the host name,
    Ray's node id, the Dask worker's host). A task reads it with :func:`current_worker`.

    Example:
        >>> import os
        >>> info = WorkerInfo.local("multiprocess")
        >>> info.engine, info.pid == os.getpid(), info.worker_id == str(os.getpid())
        ('multiprocess', True, True)
    """

    engine: str
    worker_id: str
    node_id: str
    host: str
    pid: int

    @classmethod
    def local(cls, engine: str) -> WorkerInfo:
        """This process, named by its pid, on this host."""
        host = socket.gethostname()
        return cls(engine, str(os.getpid()), host, host, os.getpid())


# The worker of the task running in this context; the process-wide one covers threads that the
# task starts, which begin with an empty context (as for the progress channel).
_task_worker: contextvars.ContextVar[WorkerInfo | None] = contextvars.ContextVar(
    "zoopipe_current_worker", default=None
)
_process_worker: WorkerInfo | None = None


def current_worker() -> WorkerInfo | None:
    """The :class:`WorkerInfo` of the engine task running here; None outside a task.

    Example:
        >>> current_worker() is None
        True
    """
    return _task_worker.get() or _process_worker


@contextlib.contextmanager
def running_on(worker: WorkerInfo) -> Iterator[None]:
    """Run the body as a task on ``worker``, which :func:`current_worker` returns. For engine
    authors (:func:`run_call` uses it).

    Example:
        >>> with running_on(WorkerInfo("ray", "w1", "n1", "10.0.0.5", 42)):
        ...     current_worker().node_id
        'n1'
    """
    global _process_worker
    token = _task_worker.set(worker)
    previous, _process_worker = _process_worker, worker
    try:
        yield
    finally:
        _task_worker.reset(token)
        _process_worker = previous


# --------------------------------------------------------------------------- progress


class TaskProgress:
    """The progress channel of one task: numbers each payload, keeps the latest per key, and
    hands ``(sequence, key, payload)`` to ``forward``, which carries it to the driver.

    Thread-safe: a task may report from the threads it starts. :attr:`latest` travels back with
    the outcome, so the driver records a task's final payloads before resolving its future.

    Example:
        >>> progress = TaskProgress(lambda sequence, key, payload: None)
        >>> progress("shard-0", {"rows": 10}); progress("shard-0", {"rows": 20})
        >>> progress.latest
        {'shard-0': (2, {'rows': 20})}
    """

    def __init__(self, forward: Callable[[int, str, dict[str, Any]], None]) -> None:
        self._forward = forward
        self._counter = itertools.count(1)
        self._latest: LatestProgress = {}
        self._lock = threading.Lock()

    def __call__(self, key: str, payload: dict[str, Any]) -> None:
        with self._lock:
            sequence = next(self._counter)
            self._latest[key] = (sequence, payload)
        self._forward(sequence, key, payload)

    @property
    def latest(self) -> LatestProgress:
        """The last payload sent per key, with its sequence number."""
        with self._lock:
            return dict(self._latest)


# --------------------------------------------------------------------------- outcomes


@dataclasses.dataclass(frozen=True)
class Outcome:
    """How one call on a worker ended; it travels to the driver in place of a raised exception.

    Either ``value``, or ``error`` (a :class:`RemoteError`) with ``original``, the pickled
    original exception when it pickles, or ``stopped`` when the engine stopped the call.
    ``progress`` holds the task's last payload per key.

    Example:
        >>> def fail():
        ...     raise ValueError("bad row 7")
        >>> outcome = run_call(fail, (), {}, token="t2", worker=WorkerInfo.local("example"))
        >>> outcome.ok, outcome.error.exc_type, outcome.error.remote_traceback.count("run_call")
        (False, 'ValueError', 0)
        >>> outcome.result()
        Traceback (most recent call last):
        ...
        ValueError: bad row 7
    """

    value: Any = None
    error: RemoteError | None = None
    original: bytes | None = None
    stopped: bool = False
    progress: LatestProgress = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the call returned a value."""
        return self.error is None and not self.stopped

    @classmethod
    def failure(cls, exc: BaseException, worker: str, progress: LatestProgress | None = None) -> Outcome:
        """The outcome of a call that raised ``exc``. Call it in the ``except`` clause of the
        function that ran the call: that function's frame, the first of the traceback, is left
        out, so the traceback starts in the user's code. ``worker`` says where (``"pid 4242"``).
        """
        tb = exc.__traceback__
        if tb is not None:
            exc = exc.with_traceback(tb.tb_next)
        remote = RemoteError.from_exception(exc, worker=worker)
        try:
            original: bytes | None = pickle.dumps(exc)
        except Exception:
            original = None  # the driver raises the RemoteError itself
        return cls(error=remote, original=original, progress=progress or {})

    def exception(self, name: str = "the task") -> BaseException | None:
        """What the driver raises for this outcome (None for a value): the original exception
        with the RemoteError as its cause, the RemoteError itself, or CancelledError when
        stopped."""
        if self.stopped:
            return concurrent.futures.CancelledError(f"{name} was stopped")
        if self.error is not None:
            return rebuild_failure(self.error, self.original)
        return None

    def result(self, name: str = "the task") -> Any:
        """The value, or raise :meth:`exception`."""
        error = self.exception(name)
        if error is not None:
            raise error
        return self.value

    def settle(self, future: concurrent.futures.Future[Any], name: str = "the task") -> None:
        """Resolve ``future`` with this outcome; a future cancelled meanwhile stays cancelled."""
        error = self.exception(name)
        if error is not None:
            settle_future(future, exception=error)
        else:
            settle_future(future, result=self.value)


def settle_future(
    future: concurrent.futures.Future[Any], result: Any = None, exception: BaseException | None = None
) -> None:
    """Set ``future``'s exception, or else its result; a no-op when it was cancelled meanwhile.

    Example:
        >>> future = concurrent.futures.Future()
        >>> future.cancel()
        True
        >>> settle_future(future, result=1)
        >>> future.cancelled()
        True
    """
    try:
        if exception is not None:
            future.set_exception(exception)
        else:
            future.set_result(result)
    except concurrent.futures.InvalidStateError:
        pass  # cancelled meanwhile: the cancellation stands


# --------------------------------------------------------------------------- running a call

# token -> thread id of each call running in this process.
_running: dict[str, int] = {}
_running_lock = threading.Lock()


def run_call(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    token: str,
    worker: WorkerInfo,
    progress: TaskProgress | None = None,
    cpus: float | None = None,
    where: str = "",
) -> Outcome:
    """Run one task on this worker and describe how it ended; never raises for the task's errors.

    While it runs, :func:`report_progress` goes to ``progress``, :func:`task_cpus` returns
    ``cpus`` and :func:`current_worker` returns ``worker``, and the call is registered under
    ``token`` for :func:`interrupt_call`. A :class:`StopRequested` raised in it gives a
    ``stopped`` outcome. ``where`` names the worker in a RemoteError (default ``"pid <pid>"``).
    """
    send = progress if progress is not None else _ignore_progress
    try:
        try:
            with _running_lock:
                _running[token] = threading.get_ident()
            with granted_cpus(cpus), progress_channel(send), running_on(worker):
                value = fn(*args, **kwargs)
        finally:
            with _running_lock:
                _running.pop(token, None)
    except StopRequested:
        return Outcome(stopped=True, progress=_latest(progress))
    except BaseException as exc:  # KeyboardInterrupt too: it is how ray.cancel() stops a task
        return Outcome.failure(exc, where or f"pid {os.getpid()}", _latest(progress))
    return Outcome(value=value, progress=_latest(progress))


def _ignore_progress(key: str, payload: dict[str, Any]) -> None:
    pass


def _latest(progress: TaskProgress | None) -> LatestProgress:
    return progress.latest if progress is not None else {}


def running_calls(tokens: list[str]) -> list[str]:
    """Those of ``tokens`` whose call runs in this process now.

    Example:
        >>> running_calls(["no-such-task"])
        []
    """
    with _running_lock:
        return [token for token in tokens if token in _running]


def interrupt_call(token: str, exc_type: type[BaseException] = StopRequested) -> bool:
    """Raise ``exc_type`` in the thread running the call ``token`` (at its next Python
    instruction; a blocking native call ends first). False when no such call runs here.

    Example:
        >>> interrupt_call("no-such-task")
        False
    """
    with _running_lock:
        ident = _running.get(token)
        return ident is not None and interrupt_thread(ident, exc_type)


def interrupt_thread(ident: int, exc_type: type[BaseException]) -> bool:
    """Raise ``exc_type`` asynchronously in the thread ``ident``; True when it was found."""
    set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
    return bool(set_async_exc(ctypes.c_ulong(ident), ctypes.py_object(exc_type)) == 1)
