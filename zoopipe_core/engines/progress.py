"""Live progress from tasks: :func:`report_progress` in a task, :func:`progress_channel` around it
in the worker, carrying payloads to the driver's engine."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import Any

ProgressCallback = Callable[[str, dict[str, Any]], None]


# The channel of the task running in this context; the process-wide one covers threads that
# the task starts, which begin with an empty context.
_task_channel: contextvars.ContextVar[ProgressCallback | None] = contextvars.ContextVar(
    "zoopipe_progress_channel", default=None
)
_process_channel: ProgressCallback | None = None


def report_progress(key: str, payload: dict[str, Any]) -> bool:
    """Send a small dict to the driver while a task runs; the driver keeps the latest per key.

    Call it from inside a task, a few times per second at most. The driver sees it through
    :meth:`Engine.progress` and :meth:`Engine.on_progress`. Returns True when sent, False when
    no engine task is running here (the function was called directly): nothing to report to.

    Example:
        >>> report_progress("shard-0", {"rows": 1000})
        False
    """
    if not isinstance(key, str):
        raise TypeError(f"report_progress() key must be a str, got {type(key).__name__} {key!r}")
    if not isinstance(payload, dict):
        raise TypeError(
            f"report_progress() payload must be a dict, got {type(payload).__name__}; "
            'wrap the value: {"value": ...}'
        )
    send = _task_channel.get() or _process_channel
    if send is None:
        return False
    send(key, payload)
    return True


@contextlib.contextmanager
def progress_channel(send: ProgressCallback) -> Iterator[None]:
    """For engine authors: route :func:`report_progress` to ``send`` while a task runs.

    Wrap the task call in the worker with it; ``send(key, payload)`` carries the payload to the
    driver, where the engine hands it to :meth:`Engine._record_progress`.

    Example:
        >>> sent = []
        >>> with progress_channel(lambda key, payload: sent.append((key, payload))):
        ...     report_progress("shard-0", {"rows": 1000})
        True
        >>> sent
        [('shard-0', {'rows': 1000})]
    """
    global _process_channel
    token = _task_channel.set(send)
    previous, _process_channel = _process_channel, send
    try:
        yield
    finally:
        _task_channel.reset(token)
        _process_channel = previous
