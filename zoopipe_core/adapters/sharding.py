"""Sharding a pipe for PipeManager.parallelize_pipe: splitting its input, naming the outputs of
each shard, and merging those parts into one file per output once every shard succeeded.

The protocol lives on the adapters, so a plugin's adapter can take part:

- ``InputAdapter.split(workers) -> list[InputAdapter]``: the input as independent shards, or
  :class:`ShardingError` saying why it cannot be split (a ``.gz`` file, a Python generator).
- ``OutputAdapter.shard(index) -> OutputAdapter``: where shard ``index`` writes
  (``out.jsonl`` -> ``out.part-00003.jsonl``).
- ``OutputAdapter.merge_parts(parts)``: one file from the parts, published atomically, the parts
  removed after.

Merging streams: CSV and JSON are copied in 1 MiB chunks, Parquet one row group at a time,
Arrow one record batch at a time; memory stays flat whatever the size of the parts.
"""

from __future__ import annotations

import bisect
import copy
import gzip
import importlib
import itertools
import os
import shutil
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Callable, Sequence

import fsspec

from zoopipe_core.errors import ShardingError
from zoopipe_core.adapters.file_append import append_parts
from zoopipe_core.adapters.native_spec import NativeSpec
from zoopipe_core.adapters.storage import PendingOutput, compression_for, is_local, local_path

if TYPE_CHECKING:
    from zoopipe_core.adapters.base import InputAdapter, OutputAdapter
    from zoopipe_core.pipe.pipe import Pipe

_CHUNK = 1 << 20
_COMPRESSION_SUFFIXES = (".gz", ".zst")


# --------------------------------------------------------------------------- naming


def part_path(path: str, index: int) -> str:
    """Where shard ``index`` of the output ``path`` goes: ``.part-NNNNN`` before the format's
    suffix, after any compression suffix is set aside.

    Example:
        >>> part_path("out/users.jsonl", 3), part_path("users.csv.gz", 0), part_path("data", 1)
        ('out/users.part-00003.jsonl', 'users.part-00000.csv.gz', 'data.part-00001')
    """
    if index < 0:
        raise ValueError(f"a shard index is >= 0, got {index}")
    compression = next((s for s in _COMPRESSION_SUFFIXES if path.endswith(s)), "")
    stem = path[: len(path) - len(compression)]
    slash = max(stem.rfind("/"), stem.rfind(os.sep))
    dot = stem.rfind(".")
    if dot <= slash + 1:  # no suffix (a leading dot names a hidden file, not a suffix)
        return f"{stem}.part-{index:05d}{compression}"
    return f"{stem[:dot]}.part-{index:05d}{stem[dot:]}{compression}"


# --------------------------------------------------------------------------- inputs


def check_workers(workers: int) -> int:
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    return workers


class FileListInput:
    """Mixin for file inputs that take one path or a list of paths.

    A list is read by ``PipeManager.parallelize_pipe``, one shard per file; a single pipe reads
    one file. ``split(workers)`` gives one shard per file of a list, or ``_split_file(workers)``
    for one file: byte ranges at exact record boundaries (found by the Rust scanner) here, row
    ranges for the Parquet and Arrow inputs.

    Example:
        >>> from zoopipe_core import JSONInputAdapter
        >>> [shard.path for shard in JSONInputAdapter(["a.jsonl", "b.jsonl", "c.jsonl"]).split(2)]
        ['a.jsonl', 'b.jsonl', 'c.jsonl']
    """

    paths: list[str]
    path: str
    split_kind = ""  # "csv" or "jsonl": what zoopipe_core._native.split_points scans for

    def _take_paths(self, path: Any) -> str:
        """Record ``path`` (one, or a list) in ``self.paths``; return the first."""
        if isinstance(path, (list, tuple)):
            if not path:
                raise ValueError(f"{type(self).__name__} got an empty list of paths; give at least one")
            self.paths = [os.fspath(p) for p in path]
        else:
            self.paths = [os.fspath(path)]
        return self.paths[0]

    def _check_single_file(self) -> None:
        paths = getattr(self, "paths", None)
        if paths is not None and len(paths) > 1:
            raise ShardingError(
                f"{type(self).__name__} got {len(paths)} files; one pipe reads one file. Read the "
                "list with PipeManager.parallelize_pipe(pipe, workers=N) (one shard per file), or "
                "build one pipe per file"
            )

    def _split_options(self) -> dict[str, Any]:
        return {}

    def _for_file(self, path: str) -> Any:
        shard = copy.copy(self)
        shard.path, shard.paths = path, [path]
        return shard

    def split(self, workers: int) -> list[Any]:
        """Shards of this input: one per file of a list; ``_split_file(workers)`` of one file."""
        check_workers(workers)
        refuse_skip_rows_and_limit(self)
        if len(self.paths) > 1:
            return [self._for_file(p) for p in self.paths]
        return self._split_file(workers)

    def _split_file(self, workers: int) -> list[Any]:
        """Shards of one file: byte ranges (CSV, JSON Lines). Table inputs override it."""
        return split_file(self, workers)


def refuse_skip_rows_and_limit(adapter: Any) -> None:
    """ShardingError when ``adapter`` has skip_rows or limit: they count from the start of the
    whole input, which no single shard sees."""
    if getattr(adapter, "skip_rows", 0) or getattr(adapter, "limit", None) is not None:
        raise ShardingError(
            f"{type(adapter).__name__}({adapter.path!r}) has skip_rows or limit, which count records "
            "from the start of the input; shards cannot honour them. Drop them to parallelize"
        )


def split_file(adapter: Any, workers: int) -> list[Any]:
    """Byte ranges of one local, uncompressed CSV or JSON Lines file, cut at record boundaries."""
    path, name = adapter.path, type(adapter).__name__
    if getattr(adapter, "format", None) == "array":
        raise ShardingError(
            f"{path} is one JSON array, which cannot be cut into byte ranges; write JSON Lines "
            "(one object per line) or pass a list of files (one shard each)"
        )
    if getattr(adapter, "byte_range", None) is not None:
        raise ShardingError(f"{name}({path!r}) is already a shard of its file; split the whole file")
    if compression_for(path) != "none":
        raise ShardingError(
            f"{path} is compressed ({compression_for(path)}): a compressed stream can only be read "
            "from its start, so it cannot be split between workers. Pass a list of files (one shard "
            "each) or an uncompressed file"
        )
    if not is_local(path):
        raise ShardingError(
            f"{path} is not a local file; byte-range splitting reads local files. Pass a list of "
            "files (one shard each)"
        )
    from zoopipe_core.pipe.runner import _native

    split_points = getattr(_native, "split_points", None)
    if split_points is None:
        raise ShardingError(
            "this build of zoopipe_core._native has no split_points(): rebuild the extension "
            "(`make native`), or pass a list of files (one shard each)"
        )
    if not os.path.isfile(local_path(path)):
        raise ShardingError(f"cannot split {path}: no such file")
    points = split_points(local_path(path), adapter.split_kind, workers, **adapter._split_options())
    shards = []
    for start, end, line_offset in points:
        shard = copy.copy(adapter)
        shard.byte_range, shard.line_offset = (start, end), line_offset
        shards.append(shard)
    return shards


def _pyarrow(purpose: str, module: str = "pyarrow.parquet") -> Any:
    """``module`` of pyarrow (optional for zoopipe), or ShardingError saying what needs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ShardingError(f"{purpose} needs pyarrow: pip install pyarrow") from exc


def row_ranges(group_rows: Sequence[int], workers: int) -> list[tuple[int, int]]:
    """``(first_row, row_count)`` per shard: whole row groups when there are at least as many
    groups as workers, otherwise rows cut evenly, ignoring group boundaries.

    Example:
        >>> row_ranges([10, 10, 10, 10], 2), row_ranges([10], 3)
        ([(0, 20), (20, 20)], [(0, 4), (4, 3), (7, 3)])
    """
    total = sum(group_rows)
    if total == 0:
        return [(0, 0)]
    if len(group_rows) >= workers:
        return _whole_group_ranges(group_rows, workers)
    size, extra = divmod(total, workers)
    ranges, start = [], 0
    for shard in range(min(workers, total)):
        count = size + (1 if shard < extra else 0)
        ranges.append((start, count))
        start += count
    return ranges


def _whole_group_ranges(group_rows: Sequence[int], workers: int) -> list[tuple[int, int]]:
    """Cut between groups at the boundary nearest each shard's share of the rows (the later
    one on a tie), leaving at least one group for each shard.

    Example:
        >>> _whole_group_ranges([10, 10, 10, 10, 1, 1], 2)
        [(0, 20), (20, 22)]
    """
    starts = list(itertools.accumulate(group_rows, initial=0))  # starts[g]: rows before group g
    cuts = [0]
    for shard in range(1, workers):
        target = starts[-1] * shard / workers
        lowest, highest = cuts[-1] + 1, len(group_rows) - (workers - shard)
        after = min(bisect.bisect_left(starts, target, lowest, highest + 1), highest)
        before = max(after - 1, lowest)
        closer_before = target - starts[before] < starts[after] - target
        cuts.append(before if closer_before else after)
    cuts.append(len(group_rows))
    return [(starts[a], starts[b] - starts[a]) for a, b in zip(cuts, cuts[1:])]


def split_parquet(adapter: Any, workers: int) -> list[Any]:
    """Shards of one Parquet file by row groups (rows within groups when there are fewer
    groups than workers), each read as ``skip_rows``/``limit`` of the file."""
    return split_rows(adapter, workers, parquet_group_rows, "a Parquet file")


def split_arrow(adapter: Any, workers: int) -> list[Any]:
    """Shards of one Arrow IPC file or stream by record batches (rows within batches when there
    are fewer batches than workers), each read as ``skip_rows``/``limit`` of the file."""
    return split_rows(adapter, workers, arrow_batch_rows, "an Arrow IPC file or stream")


def split_rows(adapter: Any, workers: int, group_rows: Callable[[str], list[int]], kind: str) -> list[Any]:
    """Copies of ``adapter`` reading ``row_ranges(group_rows(path), workers)`` through
    ``skip_rows``/``limit`` (which the Rust readers apply keeping the file's row numbers)."""
    check_workers(workers)
    refuse_skip_rows_and_limit(adapter)
    try:
        rows = group_rows(adapter.path)
    except (OSError, ValueError) as exc:  # missing file; pyarrow's ArrowInvalid is a ValueError
        raise ShardingError(
            f"cannot split {adapter.path} into shards: it could not be read as {kind} ({exc}). "
            "Check that the file exists and is complete"
        ) from exc
    shards = []
    for first, count in row_ranges(rows, workers):
        shard = copy.copy(adapter)
        shard.skip_rows, shard.limit = first, count
        shards.append(shard)
    return shards


def parquet_group_rows(path: str) -> list[int]:
    """Rows per row group of a Parquet file, from its footer alone."""
    pq = _pyarrow("splitting a Parquet file into shards (it reads the row group sizes)")
    with fsspec.open(path, "rb") as file:
        metadata = pq.ParquetFile(file).metadata
        return [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]


_ARROW_FILE_MAGIC = b"ARROW1"  # starts the IPC file format; anything else is read as a stream


def arrow_batch_rows(path: str) -> list[int]:
    """Rows per non-empty record batch of an Arrow IPC file or stream, the format told by the
    first bytes as the Rust reader tells it. A stream has no index, so it is read through; a
    local file is memory-mapped, so its batches are counted without being copied."""
    ipc = _pyarrow("splitting an Arrow IPC input into shards (it counts the rows of each record batch)",
                   "pyarrow.ipc")
    import pyarrow as pa

    opened = pa.memory_map(local_path(path)) if is_local(path) else fsspec.open(path, "rb")
    with opened as source:
        is_file = source.read(len(_ARROW_FILE_MAGIC)) == _ARROW_FILE_MAGIC
        source.seek(0)
        if is_file:
            reader = ipc.open_file(source)
            rows = [reader.get_batch(i).num_rows for i in range(reader.num_record_batches)]
        else:
            rows = [batch.num_rows for batch in ipc.open_stream(source)]
    # An empty batch holds no row to give a shard; dropping it keeps shards from being empty.
    return [count for count in rows if count]


# --------------------------------------------------------------------------- outputs


def shard_output(adapter: "OutputAdapter", index: int) -> "OutputAdapter":
    """The same output writing to ``part_path(path, index)``; ShardingError without a path."""
    path = getattr(adapter, "path", None)
    if not isinstance(path, str) or merge_kind(adapter) is None:
        raise ShardingError(
            f"{type(adapter).__name__} cannot be sharded: parallel shards each need their own "
            "file, and it writes to none. Write to a file (JSONOutputAdapter('out.jsonl'), "
            "CSVOutputAdapter('out.csv')), or implement shard(index) on the adapter"
        )
    shard = copy.copy(adapter)
    shard.path = part_path(path, index)
    return shard


def merge_kind(adapter: "OutputAdapter") -> str | None:
    """The file format of an output (its native kind: csv, jsonl, json, parquet, arrow)."""
    spec = adapter.native_spec()
    kind = spec.kind if isinstance(spec, NativeSpec) else None
    return kind if kind in _MERGERS else None


def check_mergeable(adapter: "OutputAdapter") -> None:
    """ShardingError now, before any shard runs, when the parts could not be merged."""
    kind = merge_kind(adapter)
    path = getattr(adapter, "path", "")
    from zoopipe_core.adapters.base import OutputAdapter

    if kind is None and type(adapter).merge_parts is OutputAdapter.merge_parts:
        raise ShardingError(
            f"{type(adapter).__name__} cannot merge its shards: the format is not one zoopipe "
            "merges (csv, jsonl, json, parquet, arrow); use should_merge=False, or implement "
            "merge_parts(parts) on the adapter"
        )
    if kind == "csv" and compression_for(path) == "zstd":
        raise ShardingError(
            f"cannot merge zstd-compressed CSV parts into {path}: merging drops each part's header, "
            "which needs zstd decompression in Python (not installed); write .csv or .csv.gz, or "
            "use should_merge=False"
        )


def merge_outputs(target: "OutputAdapter", parts: Sequence["OutputAdapter"]) -> None:
    """Merge the files of ``parts`` into ``target``'s file, atomically, then remove the parts."""
    kind = merge_kind(target)
    if kind is None:
        check_mergeable(target)
    paths = [p.path for p in parts]  # type: ignore[attr-defined]
    missing = [p for p in paths if not _exists(p)]
    if missing:
        raise ShardingError(f"cannot merge into {target.path}: shard outputs missing: {missing}")  # type: ignore[attr-defined]
    _MERGERS[kind](target, paths)
    for path in paths:
        if _exists(path):  # a local merge moves the first part into place
            _remove(path)


def remove_output(adapter: "OutputAdapter") -> None:
    """Remove the file an output wrote, if any: the part of a shard whose run was stopped."""
    path = getattr(adapter, "path", None)
    if isinstance(path, str) and _exists(path):
        _remove(path)


def _exists(url: str) -> bool:
    if is_local(url):
        return os.path.exists(local_path(url))
    fs, path = fsspec.core.url_to_fs(url)
    return fs.exists(path)


def _remove(url: str) -> None:
    if is_local(url):
        os.remove(local_path(url))
    else:
        fs, path = fsspec.core.url_to_fs(url)
        fs.rm(path)


def _publish(url: str, write: Callable[[IO[bytes]], None]) -> None:
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


def _open_read(url: str) -> IO[bytes]:
    return fsspec.open(url, "rb").open()


def _all_local(target: Any, paths: list[str]) -> bool:
    return is_local(target.path) and all(is_local(p) for p in paths)


def _merge_concatenated(target: Any, paths: list[str]) -> None:
    """JSON Lines: the parts one after another (gzip members and zstd frames concatenate too)."""
    if _all_local(target, paths):
        append_parts(target.path, [local_path(p) for p in paths], [0] * len(paths))
        return

    def write(out: IO[bytes]) -> None:
        for path in paths:
            with _open_read(path) as part:
                shutil.copyfileobj(part, out, _CHUNK)
    _publish(target.path, write)


def _merge_csv(target: Any, paths: list[str]) -> None:
    """CSV: the first non-empty part whole; the others without their header (checked equal)."""
    header_on = getattr(target, "header", True)
    gz = compression_for(target.path) == "gzip"
    if not gz and _all_local(target, paths):
        _append_csv_parts(target, [local_path(p) for p in paths], header_on)
        return

    def write(raw: IO[bytes]) -> None:
        out = gzip.GzipFile(fileobj=raw, mode="wb") if gz else raw
        header: bytes | None = None
        for path in paths:
            with _open_read(path) as opened:
                part = gzip.GzipFile(fileobj=opened, mode="rb") if gz else opened
                first = part.readline() if header_on else b""
                if header_on and not first:
                    continue  # a shard that wrote no records
                if header is None:
                    header = first
                    out.write(first)
                else:
                    _check_csv_header(target, path, first, header)
                shutil.copyfileobj(part, out, _CHUNK)
        if gz:
            out.close()
    _publish(target.path, write)


def _check_csv_header(target: Any, path: str, first: bytes, header: bytes) -> None:
    if first != header:
        raise ShardingError(
            f"cannot merge the CSV parts of {target.path}: {path} has the header "
            f"{first!r}, the first part {header!r}. Give CSVOutputAdapter field_names=[...] "
            "so every shard writes the same columns"
        )


def _append_csv_parts(target: Any, paths: list[str], header_on: bool) -> None:
    """Local, uncompressed CSV: the first non-empty part moved into place, the others appended
    after their header."""
    if header_on:
        # A shard that wrote no records wrote no header either: nothing of it to keep.
        paths = [p for p in paths if os.path.getsize(p) > 0] or paths[:1]
    skips, header = [], None
    for path in paths:
        with open(path, "rb") as part:
            first = part.readline() if header_on else b""
        if header is None:
            header = first
        else:
            _check_csv_header(target, path, first, header)
        skips.append(len(first))
    append_parts(target.path, paths, skips)


_WHITESPACE = b" \t\r\n"


def _merge_json_arrays(target: Any, paths: list[str]) -> None:
    """JSON arrays: one array holding the elements of every part, in part order."""
    def write(out: IO[bytes]) -> None:
        out.write(b"[")
        wrote_any = False
        for path in paths:
            with _open_read(path) as part:
                wrote_any = _copy_array_body(part, out, wrote_any, path)
        out.write(b"]\n")
    _publish(target.path, write)


def _copy_array_body(part: IO[bytes], out: IO[bytes], comma: bool, path: str) -> bool:
    """Copy the elements of the JSON array in ``part`` (no brackets); True if any was copied."""
    held = b""
    opened = copied = False
    while chunk := part.read(_CHUNK):
        data = held + chunk
        if not opened:
            stripped = data.lstrip(_WHITESPACE)
            if not stripped:
                held = b""
                continue
            if not stripped.startswith(b"["):
                raise ShardingError(f"cannot merge {path}: it is not a JSON array")
            data, opened = stripped[1:], True
        # Hold back the last non-blank byte and what follows: it may be the closing bracket.
        end = len(data.rstrip(_WHITESPACE)) - 1
        if end < 0:
            held = data
            continue
        body, held = data[:end], data[end:]
        if body.strip(_WHITESPACE):
            if comma and not copied:
                out.write(b",")
            copied = True
        if copied:
            out.write(body)
    if not opened or not held.strip(_WHITESPACE).startswith(b"]"):
        raise ShardingError(f"cannot merge {path}: it is not a complete JSON array")
    return comma or copied


def _merge_parquet(target: Any, paths: list[str]) -> None:
    """Parquet: every row group of every part, one at a time, into one file."""
    pq = _pyarrow("merging Parquet parts")
    compression = getattr(target, "compression", None) or "snappy"

    def write(out: IO[bytes]) -> None:
        writer = None
        try:
            for path in paths:
                with _open_read(path) as part:
                    reader = pq.ParquetFile(part)
                    if writer is None:
                        writer = pq.ParquetWriter(out, reader.schema_arrow, compression=compression)
                    for group in range(reader.num_row_groups):
                        writer.write_table(reader.read_row_group(group))
        finally:
            if writer is not None:
                writer.close()
    _publish(target.path, write)


def _merge_arrow(target: Any, paths: list[str]) -> None:
    """Arrow IPC (file or stream format, as the parts are): every record batch, one at a time."""
    ipc = _pyarrow("merging Arrow parts", "pyarrow.ipc")
    import pyarrow as pa

    def batches(part: IO[bytes]) -> tuple[Any, Any, bool]:
        try:
            reader = ipc.open_file(part)
            return reader.schema, (reader.get_batch(i) for i in range(reader.num_record_batches)), True
        except pa.ArrowInvalid:
            part.seek(0)
            stream = ipc.open_stream(part)
            return stream.schema, iter(stream), False

    def write(out: IO[bytes]) -> None:
        writer = None
        try:
            for path in paths:
                with _open_read(path) as part:
                    schema, parts, file_format = batches(part)
                    if writer is None:
                        new = ipc.new_file if file_format else ipc.new_stream
                        writer = new(out, schema)
                    for batch in parts:
                        writer.write_batch(batch)
        finally:
            if writer is not None:
                writer.close()
    _publish(target.path, write)


_MERGERS: dict[str, Callable[[Any, list[str]], None]] = {
    "csv": _merge_csv,
    "jsonl": _merge_concatenated,
    "json": _merge_json_arrays,
    "parquet": _merge_parquet,
    "arrow": _merge_arrow,
}


# --------------------------------------------------------------------------- the plan


@dataclass
class ShardPlan:
    """What parallelize_pipe runs: one pipe per shard, and the merges to do after them.

    Example:
        >>> from zoopipe_core import Pipe, JSONInputAdapter, JSONOutputAdapter
        >>> pipe = Pipe(JSONInputAdapter(["a.jsonl", "b.jsonl"]), JSONOutputAdapter("out.jsonl"))
        >>> plan = plan_shards(pipe, workers=2, should_merge=True)
        >>> [p.output_adapter.path for p in plan.pipes], [t.path for t, _ in plan.merges]
        (['out.part-00000.jsonl', 'out.part-00001.jsonl'], ['out.jsonl'])
    """

    pipes: list["Pipe"]
    merges: list[tuple["OutputAdapter", list["OutputAdapter"]]] = field(default_factory=list)


def plan_shards(pipe: "Pipe", workers: int, should_merge: bool, executor: Any = None) -> ShardPlan:
    """Split ``pipe`` into shard pipes (ShardingError when it cannot be split)."""
    from zoopipe_core.pipe.report import PipeReport

    check_workers(workers)
    outputs = [a for a in (pipe.output_adapter, pipe.error_output_adapter) if a is not None]
    if should_merge:
        for adapter in outputs:
            check_mergeable(adapter)
    inputs = pipe.input_adapter.split(workers)
    if not inputs:
        raise ShardingError(f"{pipe.input_adapter!r}.split({workers}) returned no shards")
    parts: list[list[Any]] = [[] for _ in outputs]
    pipes = []
    for index, shard_input in enumerate(inputs):
        shard = copy.copy(pipe)
        shard.input_adapter = shard_input
        shard.output_adapter = pipe.output_adapter.shard(index)
        parts[0].append(shard.output_adapter)
        if pipe.error_output_adapter is not None:
            shard.error_output_adapter = pipe.error_output_adapter.shard(index)
            parts[1].append(shard.error_output_adapter)
        if executor is not None:
            shard.executor = executor
        shard._report, shard._thread, shard._control = PipeReport(index), None, None
        pipes.append(shard)
    merges = list(zip(outputs, parts)) if should_merge else []
    return ShardPlan(pipes, merges)
