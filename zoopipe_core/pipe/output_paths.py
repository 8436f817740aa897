"""Outputs that would overwrite each other (or an input) are refused before anything runs.

Two outputs resolving to the same file or URL would each write it under a temporary name and
publish it last-writer-wins: one of them (often the valid records) would be silently lost. So
paths are compared resolved: relative against the working directory, ``file://`` URLs as local
paths, ``~`` expanded, symlinks followed; fsspec URLs (``s3://``, ``memory://``) as fsspec
normalises them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

from zoopipe_core.adapters.native_spec import FileSpec
from zoopipe_core.errors import PipelineError


class OutputClash(PipelineError, ValueError):
    """Two outputs (or an output and an input) resolve to the same file or URL."""


def resource_key(url: str) -> str:
    """What ``url`` names, normalised so two spellings of one file compare equal.

    Example:
        >>> import os
        >>> resource_key("out.jsonl") == resource_key("file://" + os.path.abspath("out.jsonl"))
        True
        >>> resource_key("memory://bucket//a.csv") == resource_key("memory://bucket/a.csv")
        True
    """
    from zoopipe_core.adapters.storage import filesystem_for, is_local, local_path
    from zoopipe_core.errors import PluginError

    if is_local(url):
        return os.path.realpath(os.path.abspath(local_path(url)))
    try:
        fs, path = filesystem_for(url)
    except (ImportError, PluginError):  # no filesystem for it here (the run says so): compare as written
        scheme, _, path = url.partition("://")
        return f"{scheme.lower()}://{'/'.join(p for p in path.split('/') if p)}"
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return f"{protocol}://{'/'.join(p for p in path.split('/') if p)}"


def _identity(adapter: Any) -> Any:
    """The resolved file or URL a native output writes; the adapter itself for a Python output,
    which manages its own target (a DuckDB file holds many tables), so only the same object given
    twice clashes; None for an output that writes nothing (the count-only output)."""
    try:
        spec = adapter.native_spec()
    except Exception:
        return None
    if spec is None:
        return adapter
    return resource_key(spec.url) if isinstance(spec, FileSpec) else None


def _input_urls(adapter: Any) -> list[str]:
    paths = getattr(adapter, "paths", None) or [getattr(adapter, "path", None)]
    return [os.fspath(p) for p in paths if isinstance(p, (str, os.PathLike))]


def _outputs(pipes: Iterable[Any]) -> Iterator[tuple[str, Any, Any]]:
    """(role, adapter, identity) of every output; identity is a resolved URL, or the adapter
    object itself for a Python output with no file (one object cannot take two streams)."""
    for index, pipe in pipes:
        where = "" if index is None else f"pipes[{index}]."
        outputs = (
            ("output_adapter", pipe.output_adapter),
            ("error_output_adapter", pipe.error_output_adapter),
        )
        for role, adapter in outputs:
            if adapter is None:
                continue
            identity = _identity(adapter)
            if identity is not None:
                yield f"{where}{role} {adapter!r}", adapter, identity


def check_distinct_outputs(pipes: Iterable[tuple[int | None, Any]]) -> None:
    """Raise OutputClash if two outputs of ``pipes`` ((index or None, pipe) pairs) resolve to
    the same file or URL, or an output to an input of one of them."""
    pipes = list(pipes)
    seen: dict[Any, str] = {}
    for name, _adapter, key in _outputs(pipes):
        first = seen.get(key if isinstance(key, str) else id(key))
        if first is not None:
            what = f"the same file {key}" if isinstance(key, str) else "the same adapter object"
            raise OutputClash(
                f"{first} and {name} both write to {what}: the records of one would be lost "
                "(each output is published whole, the last one replacing the other). Give each "
                "output its own path"
            )
        seen[key if isinstance(key, str) else id(key)] = name
    for index, pipe in pipes:
        for url in _input_urls(pipe.input_adapter):
            clash = seen.get(resource_key(url))
            if clash is not None:
                where = "" if index is None else f"pipes[{index}]."
                raise OutputClash(
                    f"{clash} writes to {resource_key(url)}, which {where}input_adapter "
                    f"{pipe.input_adapter!r} reads: the output would replace the input it is read "
                    "from. Write to another path (and rename it afterwards if you mean to replace the input)"
                )
