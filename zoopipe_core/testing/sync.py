"""Synchronisation between a test's driver and its workers, through files in a shared directory."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

E = TypeVar("E", bound=BaseException)

#: Seconds any single wait in the suites may take before the test fails.
WAIT = 30.0


def wait_for(condition: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """Poll ``condition`` until it returns something truthy, and return that; fail after
    ``timeout`` seconds with ``what`` in the message."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.01)


def touch(path: str | os.PathLike[str]) -> None:
    Path(path).write_text("set")


class ContractFailure(AssertionError):
    """A contract check failed (an expected exception was not raised)."""


def raises(expected: type[E], call: Callable[[], Any]) -> E:
    """Call ``call`` and return the ``expected`` exception it raised; fail when it raised none.

    Example:
        >>> raises(KeyError, lambda: {}["missing"])
        KeyError('missing')
    """
    try:
        call()
    except expected as exc:
        return exc
    raise ContractFailure(f"expected {expected.__name__} from {call}")
