"""The CPUs a running task may use, as its engine granted them.

An engine runs each task inside :func:`granted_cpus` with the CPUs it set aside for it: a
share of the machine for local processes, the task's ``num_cpus`` on Ray, one thread's core
on Dask. Code in the task reads :func:`task_cpus` to size itself, as native libraries read
``OMP_NUM_THREADS``. A pipe granted one CPU or less runs reading, its Python stage and writing
on one thread: helper threads would only take turns with the stage and with the other tasks.

Example:
    >>> task_cpus() is None
    True
    >>> with granted_cpus(1.0):
    ...     task_cpus()
    1.0
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator

_granted: contextvars.ContextVar[float | None] = contextvars.ContextVar("zoopipe_task_cpus", default=None)


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, which containers and taskset narrow).

    Example:
        >>> usable_cpus() >= 1
        True
    """
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def task_cpus() -> float | None:
    """CPUs granted to the task running here; None outside a task or when the engine does not say.

    Example:
        >>> with granted_cpus(2):
        ...     task_cpus()
        2.0
    """
    return _granted.get()


@contextlib.contextmanager
def granted_cpus(cpus: float | None) -> Iterator[None]:
    """Run the body as a task granted ``cpus`` CPUs (None: not known). For engine authors.

    Example:
        >>> with granted_cpus(0.5):
        ...     task_cpus()
        0.5
    """
    if cpus is not None and cpus <= 0:
        raise ValueError(f"a task is granted a positive number of CPUs, got {cpus}")
    token = _granted.set(None if cpus is None else float(cpus))
    try:
        yield
    finally:
        _granted.reset(token)
