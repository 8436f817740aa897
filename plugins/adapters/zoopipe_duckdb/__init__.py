"""DuckDB for zoopipe: DuckDBOutputAdapter writes a table of a DuckDB database file
(`pip install "zoopipe-core[duckdb]"`). Importing this package does not import duckdb."""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"DuckDBOutputAdapter": "zoopipe_duckdb.adapter"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'zoopipe_duckdb' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
