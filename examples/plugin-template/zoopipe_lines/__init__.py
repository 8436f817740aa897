"""zoopipe-lines: plain text files, one record per line, as a zoopipe input and output.

The adapters are imported on first use, so loading the plugin (which imports this package)
stays cheap.

Example:
    >>> from zoopipe_lines import LinesInputAdapter
    >>> LinesInputAdapter("notes.txt").source_name
    'notes.txt'
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"
__all__ = ["LinesInputAdapter", "LinesOutputAdapter"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("zoopipe_lines.adapters"), name)
    raise AttributeError(f"module 'zoopipe_lines' has no attribute {name!r}")
