"""Failures as data: what a failed item carries from the worker, and the exception it becomes.

An item's exception travels as a :class:`Failure`: a :class:`~zoopipe_core.engines.RemoteError`
(type name, message, remote traceback, worker) and the pickled original when it pickles. On the
driver :meth:`Failure.exception` gives back an exception *of the original type*, with the
RemoteError as its ``__cause__``, also when the original did not pickle.
"""

from __future__ import annotations

import dataclasses
import importlib
import pickle
from typing import Any

from zoopipe_core.engines import RemoteError


@dataclasses.dataclass(frozen=True)
class Failure:
    """One item's exception, ready to travel: its description and, when it pickles, itself.

    Example:
        >>> try:
        ...     raise KeyError("user 7")
        ... except KeyError as exc:
        ...     failure = Failure.of(exc, worker="pid 42")
        >>> error = failure.exception()
        >>> type(error).__name__, error.args, failure.remote.worker
        ('KeyError', ('user 7',), 'pid 42')
        >>> "Remote traceback" in str(error.__cause__)
        True
    """

    remote: RemoteError
    original: bytes | None = None

    @classmethod
    def of(cls, exc: BaseException, worker: str = "") -> Failure:
        """Describe ``exc``, caught on a worker (call it in the ``except`` clause)."""
        remote = RemoteError.from_exception(exc, worker=worker)
        try:
            original: bytes | None = pickle.dumps(exc)
        except Exception:
            original = None
        return cls(remote, original)

    @classmethod
    def raised(cls, exc: BaseException, worker: str = "") -> Failure:
        """Describe ``exc`` made here rather than caught (a timeout, a lost worker): it is
        raised and caught first, so it carries a traceback like any other failure.

        Example:
            >>> Failure.raised(TimeoutError("item 3 ran too long")).remote.exc_type
            'TimeoutError'
        """
        try:
            raise exc
        except BaseException as caught:
            return cls.of(caught, worker)

    def exception(self) -> BaseException:
        """The exception on the driver: the original (unpickled), or one of the original type
        rebuilt from its message when it did not pickle, or the RemoteError itself when that
        type cannot be imported here. Its ``__cause__`` is the RemoteError."""
        exc = _unpickle(self.original) or _rebuild_by_type(self.remote)
        if exc is None:
            return self.remote
        exc.__cause__ = self.remote
        return exc


def _unpickle(data: bytes | None) -> BaseException | None:
    if data is None:
        return None
    try:
        exc = pickle.loads(data)
    except Exception:
        return None
    return exc if isinstance(exc, BaseException) else None


def _rebuild_by_type(remote: RemoteError) -> BaseException | None:
    """An exception of ``remote``'s type carrying its message, made without the type's own
    ``__init__`` when that needs other arguments (why it did not pickle, often)."""
    module, _, qualname = remote.exc_type.rpartition(".")
    cls: Any = None
    try:
        cls = importlib.import_module(module or "builtins")
        for part in qualname.split("."):
            cls = getattr(cls, part)
    except Exception:
        return None
    if not (isinstance(cls, type) and issubclass(cls, BaseException)):
        return None
    try:
        return cls(remote.message)
    except Exception:
        pass
    try:
        exc = cls.__new__(cls)
        BaseException.__init__(exc, remote.message)
        return exc
    except Exception:
        return None
