"""Output sharding and merging for ``PipeManager.parallelize_pipe``: each shard writes its own
part (:func:`shard_output`), and once every shard succeeded the parts become one file per
output (:func:`merge_outputs`), published atomically, the parts removed after.

Each file format provides its own merger with :func:`register_merger`, under its native kind
(the ``kind`` of the output's ``native_spec()``), when its module is imported: CSV
(:mod:`~zoopipe_core.adapters.csv`), JSON Lines and JSON arrays (:mod:`~zoopipe_core.adapters.jsonl`),
Parquet (:mod:`~zoopipe_core.adapters.parquet`), Arrow (:mod:`~zoopipe_core.adapters.arrow`). A
kind whose merger is not known yet is looked up as the output adapter registered under that
name, which imports its module. Mergers stream with the helpers here: memory stays flat
whatever the size of the parts.

Example:
    >>> from zoopipe_core import JSONOutputAdapter
    >>> JSONOutputAdapter("out/all.jsonl").shard(2).path, merge_kind(JSONOutputAdapter("all.json"))
    ('out/all.part-00002.jsonl', 'json')
"""

from __future__ import annotations

import copy
import dataclasses
import io
import os
import shutil
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING, Any

import fsspec

from zoopipe_core import plugins
from zoopipe_core.adapters.files import part_path
from zoopipe_core.adapters.storage import PendingOutput, filesystem_for, is_local, local_path, object_merger
from zoopipe_core.errors import PluginError, ShardingError

if TYPE_CHECKING:
    from zoopipe_core.adapters.base import OutputAdapter

#: Bytes a merger reads and writes at a time.
CHUNK = 1 << 20
#: Bytes of a part read at a time, from its start, to find its first line on a store.
HEAD_WINDOW = 64 << 10


def _accept_any(target: Any) -> None:
    """No check: every output of the format can be merged."""


@dataclasses.dataclass(frozen=True)
class FormatMerger:
    """How the parts of one file format become one file.

    ``merge(target, paths)`` writes the parts at ``paths`` into ``target.path`` (publishing it
    with :func:`publish`, or :func:`~zoopipe_core.adapters.file_append.append_parts` for local
    files); ``check(target)`` raises ShardingError before any shard runs when ``target``'s parts
    could not be merged (a codec the merger cannot read, say).

    Example:
        >>> def concatenate(target, paths):
        ...     def write(out):
        ...         for path in paths:
        ...             copy_part(path, out)
        ...     publish(target.path, write)
        >>> register_merger("example-lines", FormatMerger(concatenate))
        >>> format_merger("example-lines") is not None
        True
    """

    merge: Callable[[Any, list[str]], None]
    check: Callable[[Any], None] = _accept_any
    #: With should_merge=False, the parts form a directory dataset at the output's path
    #: (:mod:`zoopipe_core.adapters.dataset`) instead of ``part_path`` files beside it.
    dataset: bool = False


_MERGERS: dict[str, FormatMerger] = {}


def register_merger(kind: str, merger: FormatMerger) -> None:
    """Merge the parts of outputs of native kind ``kind`` with ``merger``. A format's module
    calls it when imported; registering a kind again replaces its merger."""
    _MERGERS[kind] = merger


def format_merger(kind: str | None) -> FormatMerger | None:
    """The merger of native kind ``kind``, or None when no format provides one. A kind not
    registered yet is looked up as an output adapter name, whose module registers its merger."""
    if kind is None:
        return None
    if kind not in _MERGERS:
        try:
            plugins.get_adapter_class(kind, "output")
        except PluginError:
            return None
    return _MERGERS.get(kind)


def merge_kind(adapter: OutputAdapter) -> str | None:
    """The file format of an output (its native kind: csv, jsonl, json, parquet, arrow), or None
    when no format merger handles it."""
    kind = adapter.merge_format
    return kind if format_merger(kind) is not None else None


def shard_output(adapter: OutputAdapter, index: int) -> OutputAdapter:
    """The same output writing to ``part_path(path, index)``; ShardingError without a path."""
    path = getattr(adapter, "path", None)
    if not isinstance(path, str) or merge_kind(adapter) is None:
        raise ShardingError(
            f"{type(adapter).__name__} cannot be sharded: parallel shards each need their own "
            "file, and it writes to none. Write to a file (JSONOutputAdapter('out.jsonl'), "
            "CSVOutputAdapter('out.csv')), or implement shard(index) on the adapter"
        )
    shard = copy.copy(adapter)
    shard.path = part_path(path, index)  # type: ignore[attr-defined]
    return shard


def check_mergeable(adapter: OutputAdapter, own_merge: bool = False) -> None:
    """ShardingError now, before any shard runs, when the parts could not be merged: no merger
    for the output's format, and (``own_merge=False``) no ``merge_parts`` of the adapter's own."""
    merger = format_merger(merge_kind(adapter))
    if merger is None:
        if not own_merge:
            raise ShardingError(
                f"{type(adapter).__name__} cannot merge its shards: the format is not one zoopipe "
                "merges (csv, jsonl, json, parquet, arrow); use should_merge=False, or implement "
                "merge_parts(parts) on the adapter"
            )
        return
    merger.check(adapter)


def merge_outputs(target: OutputAdapter, parts: Sequence[OutputAdapter]) -> None:
    """Merge the files of ``parts`` into ``target``'s file, atomically, then remove the parts."""
    merger = format_merger(merge_kind(target))
    if merger is None:
        check_mergeable(target)
        raise ShardingError(f"{type(target).__name__} has no merger for its parts")
    paths = [p.path for p in parts]  # type: ignore[attr-defined]
    missing = [p for p in paths if not exists(p)]
    if missing:
        raise ShardingError(f"cannot merge into {target.path}: shard outputs missing: {missing}")  # type: ignore[attr-defined]
    merger.merge(target, paths)
    for path in paths:
        if exists(path):  # a local merge moves the first part into place
            remove(path)


def merges_in_place(target: OutputAdapter, parts: Sequence[OutputAdapter]) -> bool:
    """True when ``target``'s merge belongs in the process that ran the shards' driver: its file
    and every part are local files (the driver's filesystem; they are moved and appended), or in
    this process's memory (``memory://``), or the output has no path (its own ``merge_parts``).
    Otherwise the parts live on a store, and the merge runs on a worker of the run's engine, so
    no byte of them passes through the driver.

    Example:
        >>> from zoopipe_core import ParquetOutputAdapter
        >>> target = ParquetOutputAdapter("s3://bucket/out.parquet")
        >>> merges_in_place(target, [target.shard(0)]), merges_in_place(ParquetOutputAdapter("o.parquet"), [])
        (False, True)
    """
    urls = [getattr(a, "path", None) for a in (target, *parts)]
    paths = [url for url in urls if isinstance(url, str)]
    if len(paths) < len(urls):
        return True
    return all(is_local(url) or url.startswith("memory://") for url in paths)


def remove_output(adapter: OutputAdapter) -> None:
    """Remove the file an output wrote, if any: the part of a shard whose run was stopped."""
    path = getattr(adapter, "path", None)
    if isinstance(path, str) and exists(path):
        remove(path)


# --------------------------------------------------------------------------- helpers of mergers


def exists(url: str) -> bool:
    """True if the local path or fsspec URL ``url`` exists."""
    if is_local(url):
        return os.path.exists(local_path(url))
    fs, path = filesystem_for(url)
    return bool(fs.exists(path))


def remove(url: str) -> None:
    """Remove the file at the local path or fsspec URL ``url``."""
    if is_local(url):
        os.remove(local_path(url))
    else:
        fs, path = filesystem_for(url)
        fs.rm(path)


def publish(url: str, write: Callable[[IO[bytes]], Any]) -> None:
    """Write ``url`` through ``write(file)`` under a temporary name; rename it into place only
    when ``write`` returned."""
    pending = PendingOutput(url)
    try:
        location = pending.location()
        if location.path is not None:
            with open(location.path, "wb") as file:
                write(file)
        else:
            write(location.file)
        pending.commit()
    except BaseException:
        pending.abort()
        raise


class WriteSink(io.RawIOBase):
    """``out`` as a complete binary file object, for writers that want one (pyarrow asks
    ``closed``, which a store's uncommitted upload need not have). Closing it leaves ``out``
    open: :func:`publish` commits or discards it.

    Example:
        >>> import pyarrow as pa, pyarrow.parquet as pq
        >>> class Upload:  # has write() and flush() only, like an uncommitted S3 upload
        ...     data = b""
        ...     def write(self, chunk): self.data += bytes(chunk); return len(chunk)
        ...     def flush(self): pass
        >>> upload = Upload()
        >>> pq.write_table(pa.table({"a": [1]}), WriteSink(upload)); upload.data[:4]
        b'PAR1'
    """

    def __init__(self, out: Any) -> None:
        super().__init__()
        self._out = out

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._out.write(data)
        return len(data)

    def flush(self) -> None:
        if not self.closed:
            self._out.flush()


def open_read(url: str) -> IO[bytes]:
    """The part at the local path or fsspec URL ``url``, open for reading bytes."""
    return fsspec.open(url, "rb").open()


def copy_part(url: str, out: IO[bytes]) -> None:
    """Copy the whole part at ``url`` into ``out``, :data:`CHUNK` bytes at a time."""
    with open_read(url) as part:
        shutil.copyfileobj(part, out, CHUNK)


def all_local(target: Any, paths: list[str]) -> bool:
    """True when ``target``'s file and every part are local files (merged by moving and
    appending, not copying through Python)."""
    return is_local(target.path) and all(is_local(p) for p in paths)


def store_merger(target: Any, paths: list[str]) -> Callable[[str, list[tuple[str, int]]], None] | None:
    """The store's own merge for ``target``'s file and the parts at ``paths``
    (:func:`~zoopipe_core.adapters.storage.object_merger`: ``merge(target_url, [(part, start)])``
    copies the parts from ``start`` on into the target on the store, publishing it atomically),
    or None when they are not all on a store that offers one: merge through Python then."""
    merger = object_merger(target.path, paths)
    return merger if callable(merger) else None


def first_line(url: str) -> bytes:
    """The first line of the part at ``url``, newline included (b"" for an empty part), found by
    ranged reads of :data:`HEAD_WINDOW` bytes, then 4x larger windows: the rest of a part on a
    store is never read.

    Example:
        >>> import fsspec
        >>> fsspec.filesystem("memory").pipe("/first-line/part.csv", b"a,b\\n1,2\\n")
        >>> first_line("memory:///first-line/part.csv")
        b'a,b\\n'
    """
    if is_local(url):
        with open(local_path(url), "rb") as part:
            return part.readline()
    fs, path = filesystem_for(url)
    size = fs.size(path)
    window = HEAD_WINDOW
    while True:
        head = fs.cat_file(path, start=0, end=min(window, size)) if size else b""
        newline = head.find(b"\n")
        if newline >= 0:
            return head[: newline + 1]
        if len(head) >= size:
            return head
        window *= 4
