"""Errors of tasks run by engines: what a failure on a worker looks like on the driver.

:class:`RemoteError` describes an exception raised in a worker; :class:`WorkerLost` a worker that
died before answering. :func:`rebuild_failure` turns a failure back into what the driver raises.
"""

from __future__ import annotations

import pickle
import signal
import traceback
from collections.abc import Callable
from typing import Any

from zoopipe_core.errors import ZoopipeError


def exception_type_name(exc: BaseException) -> str:
    """``ValueError`` for built-in exceptions, ``package.module.Class`` for the others."""
    cls = type(exc)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


class RemoteError(ZoopipeError):
    """A task failed on a worker: the original exception's type name, message and traceback.

    When the original exception can be rebuilt on the driver, engines raise *it* (same type,
    same message) with a RemoteError as its ``__cause__``, so the worker's traceback prints
    above it ("The above exception was the direct cause..."). When it cannot (its class is not
    importable on the driver, it does not pickle, or it is not an ``Exception`` such as
    ``KeyboardInterrupt``), engines raise the RemoteError itself. :meth:`of` finds it either way.

    Example:
        >>> text = "Traceback ...\\nValueError: bad row 7\\n"
        >>> remote = RemoteError("ValueError", "bad row 7", text)
        >>> remote.exc_type, remote.message
        ('ValueError', 'bad row 7')
        >>> original = ValueError("bad row 7")
        >>> original.__cause__ = remote
        >>> RemoteError.of(original) is remote
        True
        >>> print(str(remote).splitlines()[0])
        ValueError: bad row 7
    """

    def __init__(self, exc_type: str, message: str, remote_traceback: str = "", worker: str = "") -> None:
        super().__init__(f"{exc_type}: {message}")
        self.exc_type = exc_type
        self.message = message
        self.remote_traceback = remote_traceback
        self.worker = worker  # where it ran, e.g. "pid 4242"; "" when unknown

    @classmethod
    def from_exception(cls, exc: BaseException, worker: str = "") -> RemoteError:
        """Describe ``exc``, caught in a worker, for the trip to the driver."""
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return cls(exception_type_name(exc), str(exc), text, worker)

    @staticmethod
    def of(exc: BaseException) -> RemoteError | None:
        """The RemoteError describing ``exc``: itself, its ``__cause__``, or None if not remote."""
        if isinstance(exc, RemoteError):
            return exc
        if isinstance(exc.__cause__, RemoteError):
            return exc.__cause__
        return None

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.exc_type, self.message, self.remote_traceback, self.worker))

    def __str__(self) -> str:
        text = f"{self.exc_type}: {self.message}"
        if self.remote_traceback:
            where = f" (worker {self.worker})" if self.worker else ""
            text += f"\n\nRemote traceback{where}:\n{self.remote_traceback.rstrip()}"
        return text


def rebuild_failure(remote: RemoteError, original: bytes | None) -> BaseException:
    """What a failed task raises in the driver: the original exception (unpickled from
    ``original``) with ``remote`` as its cause, or ``remote`` itself when the original cannot be
    rebuilt here (its class is not importable in the driver, say). Shared by every engine."""
    if original is not None:
        try:
            exc = pickle.loads(original)
        except Exception:
            exc = None
        if isinstance(exc, Exception):
            exc.__cause__ = remote
            return exc
    return remote


def callable_name(fn: Callable[..., Any]) -> str:
    """A task's name in logs and dashboards: the callable's qualified name."""
    return getattr(fn, "__qualname__", None) or type(fn).__name__


def signal_name(exitcode: int | None) -> str | None:
    """The name of the signal that ended a process with this exit code (negative), or None."""
    if exitcode is None or exitcode >= 0:
        return None
    try:
        return signal.Signals(-exitcode).name
    except ValueError:
        return f"signal {-exitcode}"


def worker_import_error(engine: str, exc: BaseException) -> RuntimeError:
    """The error ``start`` raises when a worker could not run :func:`prime_worker`."""
    return RuntimeError(
        f"{engine} could not load zoopipe_core in a worker: {type(exc).__name__}: {exc}. "
        "Install zoopipe-core (the same version as here) where the workers run, or ship it "
        "with engine.prepare(WorkerEnvironment(requirements=[...]))"
    )


class WorkerLost(RemoteError):
    """The worker running a task died before returning a result (SIGKILL, ``os._exit``, a crash).

    Only that task's future fails with it; other tasks go on. ``pid`` and ``exitcode`` are set
    when the engine knows them; a negative ``exitcode`` is the number of the killing signal.

    Example:
        >>> lost = WorkerLost("worker process 4242 running 'load' was killed by SIGKILL", 4242, -9)
        >>> lost.pid, lost.signal_name, isinstance(lost, RemoteError)
        (4242, 'SIGKILL', True)
    """

    def __init__(
        self, message: str, pid: int | None = None, exitcode: int | None = None, worker: str = ""
    ) -> None:
        super().__init__("WorkerLost", message, "", worker or (f"pid {pid}" if pid else ""))
        self.args = (message,)
        self.pid = pid
        self.exitcode = exitcode

    @property
    def signal_name(self) -> str | None:
        """``"SIGKILL"`` when a signal ended the worker, else None."""
        return signal_name(self.exitcode)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.pid, self.exitcode, self.worker))

    def __str__(self) -> str:
        return self.message
