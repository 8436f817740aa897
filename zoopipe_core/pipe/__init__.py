"""One pipe: an input adapter, validation against a pydantic model, transforms, and the outputs.

``pipe`` holds :class:`Pipe`; ``runner`` hands it to the Rust executor (``zoopipe_core._native``);
``stage`` validates and transforms each batch; ``report`` counts what happened. The names users
need are exported by ``zoopipe_core``.

Example:
    >>> from zoopipe_core.pipe import Pipe
    >>> from zoopipe_core import PyGeneratorInputAdapter, MemoryOutputAdapter
    >>> Pipe(PyGeneratorInputAdapter([{"a": 1}]), MemoryOutputAdapter()).run().success_count
    1
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Pipe": "zoopipe_core.pipe.pipe",
    "PipeReport": "zoopipe_core.pipe.report",
    "PipeStatus": "zoopipe_core.pipe.report",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'zoopipe_core.pipe' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
