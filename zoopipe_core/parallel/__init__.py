"""Many pipes at once: :class:`PipeManager` runs pipes, or the shards of one pipe, on an engine,
and merges the shards' outputs.

``manager`` holds :class:`PipeManager`; ``shards`` plans the shards of one pipe; ``worker`` is the
task that runs one pipe on a worker; ``report`` builds :class:`FlowReport`; ``cleanup`` removes
what a run that did not complete leaves; ``exit_hooks`` stops runs at exit and on SIGTERM.

Example:
    >>> from zoopipe_core.parallel import PipeManager
    >>> PipeManager.__name__
    'PipeManager'
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"PipeManager": "zoopipe_core.parallel.manager", "FlowReport": "zoopipe_core.parallel.report"}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'zoopipe_core.parallel' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
