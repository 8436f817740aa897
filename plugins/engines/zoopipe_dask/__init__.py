"""Dask for zoopipe: DaskEngine runs pipes and tasks on a Dask cluster (`pip install "zoopipe-core[dask]"`).

Importing this package does not import Dask; the engine does, when it starts.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"DaskEngine": "zoopipe_dask.engine"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'zoopipe_dask' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
