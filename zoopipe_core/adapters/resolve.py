"""Adapters from what a user writes: an adapter, a registered name, or a path or URL whose suffix
names the format (``Pipe("users.csv", "users.parquet")``, ``zoopipe run``).

The names and suffixes come from the plugin system's lookups (``docs/plugins.md``); the classes
they name are imported on first use.

Example:
    >>> resolve_input_adapter("s3://bucket/day=1/events.jsonl.gz")
    JSONInputAdapter('s3://bucket/day=1/events.jsonl.gz')
    >>> type(resolve_output_adapter("count")).__name__
    'CountOutputAdapter'
"""

from __future__ import annotations

import os
import re
from typing import Any

from zoopipe_core import plugins
from zoopipe_core.adapters.base import InputAdapter, OutputAdapter
from zoopipe_core.plugins import Direction

_BARE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def resolve_input_adapter(spec: Any, **options: Any) -> InputAdapter:
    """An input adapter from ``spec``: an InputAdapter → itself; a registered name →
    ``cls(**options)``; a path or URL → ``cls(path, **options)`` for the class of its suffix."""
    adapter: InputAdapter = _resolve_adapter(spec, "input", InputAdapter, options)
    return adapter


def resolve_output_adapter(spec: Any, **options: Any) -> OutputAdapter:
    """An output adapter from ``spec``: an OutputAdapter → itself; a registered name →
    ``cls(**options)``; a path or URL → ``cls(path, **options)`` for the class of its suffix."""
    adapter: OutputAdapter = _resolve_adapter(spec, "output", OutputAdapter, options)
    return adapter


def _resolve_adapter(spec: Any, direction: Direction, base: type, options: dict[str, Any]) -> Any:
    if isinstance(spec, base):
        if options:
            raise TypeError(
                f"options {sorted(options)} were given with a ready {direction} adapter "
                f"({type(spec).__name__}); pass them to its constructor instead"
            )
        return spec
    if isinstance(spec, os.PathLike):
        spec = os.fspath(spec)
    if not isinstance(spec, str):
        raise TypeError(
            f"expected an {direction} adapter, a registered adapter name or a path/URL, "
            f"got {type(spec).__name__}: {spec!r}"
        )
    if spec in plugins.component_names("adapter", direction) or _BARE_NAME.match(spec):
        return plugins.get_adapter_class(spec, direction)(**options)
    return plugins.adapter_for_path(spec, direction)(spec, **options)
