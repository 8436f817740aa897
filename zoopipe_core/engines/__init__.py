"""Engines: where parallel work runs. The interface, and the built-in local-process engine.

Tasks import :func:`report_progress` from here; importing this package stays cheap, and
:class:`MultiProcessEngine` is loaded on first use.

Example:
    >>> from zoopipe_core.engines import Engine, MultiProcessEngine, report_progress
    >>> issubclass(MultiProcessEngine, Engine), MultiProcessEngine.name
    (True, 'multiprocess')
"""

from __future__ import annotations

import importlib
from typing import Any

from zoopipe_core.engines.base import (
    Engine,
    RemoteError,
    SharedRef,
    WorkerEnvironment,
    WorkerLost,
    progress_channel,
    report_progress,
)
from zoopipe_core.engines.main_guard import UnguardedMainError
from zoopipe_core.engines.resources import granted_cpus, task_cpus

_LAZY = {"MultiProcessEngine": "zoopipe_core.engines.multiprocess"}

__all__ = [
    "Engine",
    "MultiProcessEngine",
    "RemoteError",
    "SharedRef",
    "UnguardedMainError",
    "WorkerEnvironment",
    "WorkerLost",
    "granted_cpus",
    "progress_channel",
    "report_progress",
    "task_cpus",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'zoopipe_core.engines' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
