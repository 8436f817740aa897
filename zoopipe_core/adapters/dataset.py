"""Unmerged parts as a directory dataset: with ``should_merge=False``, a parallel run's Parquet
output ``out.parquet`` becomes a directory that Ray Data, Dask, polars, pyarrow and DuckDB read as
one dataset::

    out.parquet/part-00000.parquet
    out.parquet/part-00001.parquet
    out.parquet/_SUCCESS            # written last, once every shard succeeded

Dataset readers skip names starting with ``.`` or ``_``: a part is written under a hidden
temporary name (``.part-00000.parquet.zoopipe-...tmp``; on S3 an uncommitted multipart upload)
and appears under its name only when its shard succeeded, and ``_SUCCESS`` marks the run as whole.
:func:`begin_dataset` removes the marker of an earlier run when a run starts; when it succeeds,
:func:`finish_dataset` removes the part files this run did not write (an earlier run's, with more
workers) and writes the marker. The driver only lists, deletes and writes the empty marker: no
part byte passes through it.

A format opts in with ``FormatMerger(dataset=True)`` (Parquet does).

Example:
    >>> from zoopipe_core import ParquetOutputAdapter
    >>> dataset_part(ParquetOutputAdapter("s3://bucket/out.parquet"), 3).path
    's3://bucket/out.parquet/part-00003.parquet'
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from zoopipe_core.adapters import merge
from zoopipe_core.adapters.storage import filesystem_for, is_local, local_path
from zoopipe_core.errors import ShardingError

if TYPE_CHECKING:
    from zoopipe_core.adapters.base import OutputAdapter

#: The marker a successful run writes last into its dataset directory (as Spark and Hadoop do).
SUCCESS = "_SUCCESS"
#: The name of a part file: what finish_dataset may remove when this run did not write it.
_PART = re.compile(r"^part-\d{5,}\.[A-Za-z0-9]+$")


def writes_dataset(adapter: OutputAdapter) -> bool:
    """True when the unmerged parts of ``adapter`` form a directory dataset at its path: its
    format's merger says so (Parquet), and the adapter keeps the default ``shard``.

    Example:
        >>> from zoopipe_core import ParquetOutputAdapter, JSONOutputAdapter
        >>> writes_dataset(ParquetOutputAdapter("out.parquet")), writes_dataset(JSONOutputAdapter("o.jsonl"))
        (True, False)
    """
    from zoopipe_core.adapters.base import OutputAdapter

    if type(adapter).shard is not OutputAdapter.shard or not isinstance(getattr(adapter, "path", None), str):
        return False
    merger = merge.format_merger(merge.merge_kind(adapter))
    return merger is not None and merger.dataset


def part_name(path: str, index: int) -> str:
    """The file name of part ``index`` in the dataset directory ``path``: ``part-NNNNN`` and the
    directory's suffix (``.parquet``).

    Example:
        >>> part_name("out/users.parquet", 12), part_name("out/users", 0)
        ('part-00012.parquet', 'part-00000')
    """
    suffix = os.path.splitext(path.rstrip("/"))[1]
    return f"part-{index:05d}{suffix}"


def _join(directory: str, name: str) -> str:
    return f"{directory.rstrip('/')}/{name}"


def dataset_part(adapter: OutputAdapter, index: int) -> OutputAdapter:
    """The same output writing part ``index`` inside the directory at its path."""
    shard = copy.copy(adapter)
    shard.path = _join(adapter.path, part_name(adapter.path, index))  # type: ignore[attr-defined]
    return shard


def check_dataset_target(adapter: OutputAdapter, should_merge: bool) -> None:
    """ShardingError before any shard runs when what exists at the output's path is the other
    kind: a file where the parts' directory goes (``should_merge=False``), or a directory where
    the merged file goes (``should_merge=True``)."""
    path: str = adapter.path  # type: ignore[attr-defined]
    if is_local(path):
        is_file, is_dir = os.path.isfile(local_path(path)), os.path.isdir(local_path(path))
    else:
        fs, key = filesystem_for(path)
        is_file = bool(fs.isfile(key))
        is_dir = not is_file and bool(fs.isdir(key))
    if not should_merge and is_file:
        raise ShardingError(
            f"{path} is a file, but with should_merge=False the shards write a directory of parts "
            f"there ({_join(path, part_name(path, 0))}, ...). Remove the file, write to another "
            "path, or use should_merge=True to get one file"
        )
    if should_merge and is_dir:
        raise ShardingError(
            f"{path} is a directory (the parts of an earlier run with should_merge=False?), but "
            "should_merge=True writes one file there. Remove the directory, write to another path, "
            "or use should_merge=False"
        )


def _listing(directory: str) -> tuple[Any, str, list[str]]:
    """The filesystem, path and entry names of ``directory`` (none when it does not exist)."""
    fs, path = filesystem_for(directory)
    path = path.rstrip("/")
    try:
        entries = fs.ls(path, detail=False, refresh=True) if fs.isdir(path) else []
    except FileNotFoundError:
        entries = []
    return fs, path, [str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries]


def begin_dataset(target: OutputAdapter) -> None:
    """A run of ``target``'s dataset starts: remove the ``_SUCCESS`` of an earlier run, so the
    directory is not marked whole while its parts are being replaced."""
    marker = _join(target.path, SUCCESS)  # type: ignore[attr-defined]
    if merge.exists(marker):
        merge.remove(marker)


def finish_dataset(target: OutputAdapter, parts: Sequence[OutputAdapter]) -> list[str]:
    """Every shard succeeded: remove the part files in the directory that are not ``parts``
    (left by an earlier run), then write ``_SUCCESS``. Returns the names removed.

    Example:
        >>> import fsspec
        >>> from zoopipe_core import ParquetOutputAdapter
        >>> fs = fsspec.filesystem("memory")
        >>> for name in ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]:
        ...     fs.pipe(f"/finish-doc/out.parquet/{name}", b"PAR1")
        >>> target = ParquetOutputAdapter("memory://finish-doc/out.parquet")
        >>> finish_dataset(target, [dataset_part(target, i) for i in range(2)])
        ['part-00002.parquet']
        >>> sorted(p.rsplit("/", 1)[-1] for p in fs.ls("/finish-doc/out.parquet", detail=False))
        ['_SUCCESS', 'part-00000.parquet', 'part-00001.parquet']
    """
    directory: str = target.path  # type: ignore[attr-defined]
    ours = {p.path.rstrip("/").rsplit("/", 1)[-1] for p in parts}  # type: ignore[attr-defined]
    fs, path, names = _listing(directory)
    stale = sorted(n for n in names if _PART.match(n) and n not in ours)
    for name in stale:
        fs.rm(f"{path}/{name}")
    fs.pipe_file(f"{path}/{SUCCESS}", b"")  # empty: one small PUT, atomic on every store
    return stale
