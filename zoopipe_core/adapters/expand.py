"""A directory, a prefix or a glob as an input: the files it names, expanded once on the driver.

``data/*.csv``, ``s3://bucket/data/*.csv``, ``data/`` (or a local directory without the slash)
and ``memory://x/parts/`` are patterns (:func:`is_pattern`); :func:`expand` lists their files
through fsspec, sorted, with their sizes. As Spark and Dask do, a file or directory whose name
starts with ``.`` or ``_`` (``_SUCCESS``, ``.part-0.crc``, ``_temporary/``) is skipped. A
directory or prefix keeps only the files of the adapter's format (by suffix, compressed or not);
a glob keeps what it matches, since the pattern names the files itself.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from zoopipe_core.adapters.storage import filesystem_for, is_local, local_path
from zoopipe_core.errors import PipelineError

GLOB_CHARS = "*?["
COMPRESSION_SUFFIXES = (".gz", ".zst")


@dataclass(frozen=True)
class FoundFile:
    """One file of an expanded pattern: its path (a URL for non-local storage) and size in bytes."""

    path: str
    size: int


def is_pattern(path: str) -> bool:
    """Whether ``path`` names several files: a glob, a prefix ending in ``/``, a local directory.

    Example:
        >>> is_pattern("s3://b/data/*.csv"), is_pattern("memory://x/parts/"), is_pattern("a.csv")
        (True, True, False)
    """
    if any(char in path for char in GLOB_CHARS) or path.endswith("/"):
        return True
    return is_local(path) and os.path.isdir(local_path(path))


def has_suffix(path: str, suffixes: Sequence[str]) -> bool:
    """Whether ``path`` ends in one of ``suffixes``, after a compression suffix.

    Example:
        >>> has_suffix("a/b.CSV.gz", [".csv"]), has_suffix("a/b.csv.crc", [".csv"])
        (True, False)
    """
    name = path.lower()
    for compression in COMPRESSION_SUFFIXES:
        name = name.removesuffix(compression)
    return name.endswith(tuple(suffixes))


def _root(fs_path: str) -> str:
    """The part of a glob before its first wildcard, up to a ``/``: the directory listed."""
    first = min((fs_path.find(c) for c in GLOB_CHARS if c in fs_path), default=len(fs_path))
    return fs_path[: fs_path.rfind("/", 0, first) + 1]


def _hidden(fs_path: str, root: str, asked: str) -> bool:
    """Whether a name below ``root`` starts with ``.`` or ``_`` where the pattern's own part
    (``asked``, relative to ``root``) does not: ``data/_tmp*.csv`` asks for such files."""
    relative = fs_path[len(root) :] if fs_path.startswith(root) else fs_path.rsplit("/", 1)[-1]
    asked_parts = asked.split("/")
    for index, part in enumerate(relative.split("/")):
        wanted = asked_parts[index] if index < len(asked_parts) else ""
        if part.startswith((".", "_")) and not wanted.startswith(part[0]):
            return True
    return False


def expand(pattern: str, suffixes: Sequence[str]) -> list[FoundFile]:
    """The files ``pattern`` names, sorted by path; PipelineError naming it when there are none
    (as for a missing file).

    Example:
        >>> import fsspec
        >>> fs = fsspec.filesystem("memory")
        >>> for name in ["b.csv", "a.csv", "_SUCCESS", "a.csv.crc", "notes.txt"]:
        ...     fs.pipe(f"/expand-doc/{name}", b"id\\n1\\n")
        >>> [(f.path, f.size) for f in expand("memory://expand-doc/", [".csv"])]
        [('memory:///expand-doc/a.csv', 5), ('memory:///expand-doc/b.csv', 5)]
        >>> [f.path for f in expand("memory://expand-doc/*.txt", [".csv"])]
        ['memory:///expand-doc/notes.txt']
    """
    fs, fs_path = filesystem_for(local_path(pattern) if is_local(pattern) else pattern)  # ~ expanded
    globbing = any(char in fs_path for char in GLOB_CHARS)
    try:
        if globbing:
            found = fs.glob(fs_path, detail=True)
            root = _root(fs_path)
        else:
            found = fs.find(fs_path, detail=True)
            root = fs_path.rstrip("/") + "/"
    except FileNotFoundError:
        found, root = {}, fs_path
    files = []
    for path, info in sorted(found.items()):
        asked = fs_path[len(root) :] if globbing else ""
        if info.get("type") != "file" or _hidden(path, root, asked):
            continue
        if not globbing and not has_suffix(path, suffixes):
            continue
        shown = path if is_local(pattern) else fs.unstrip_protocol(path)
        files.append(FoundFile(shown, int(info.get("size") or 0)))
    if not files:
        where = (
            f"match the glob {pattern!r}"
            if globbing
            else (f"of type {', '.join(suffixes)} are in the directory (or prefix) {pattern!r}")
        )
        raise PipelineError(
            f"no input files {where} (names starting with '.' or '_' are skipped); check the "
            "path, and that the credentials for its storage can list it"
        )
    return files
