"""JSON input and output, read and written in Rust: JSON Lines (one object per line) or a JSON
array (``[{...}, {...}]``, chosen by ``format="array"`` or the ``.json`` suffix). `.gz` and
`.zst` by suffix. The shards of a parallel run are byte ranges of a JSON Lines input; their
outputs merge by concatenation (JSON Lines) or into one array."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import IO, Any

from zoopipe_core.adapters import merge
from zoopipe_core.adapters.base import InputAdapter, OutputAdapter
from zoopipe_core.adapters.file_append import append_parts
from zoopipe_core.adapters.files import FileListInput
from zoopipe_core.adapters.native_spec import JsonArraySink, JsonArraySource, JsonlSink, JsonlSource
from zoopipe_core.adapters.read_options import ReadOptions
from zoopipe_core.adapters.storage import compression_for, local_path
from zoopipe_core.errors import ShardingError

FORMATS = ("jsonl", "array")


def _json_format(path: str, format: str | None) -> str:
    """The format asked for, or by suffix: `.json` (also `.json.gz`) is an array, others lines."""
    if format is None:
        base = path
        for suffix in (".gz", ".zst"):
            base = base.removesuffix(suffix)
        return "array" if base.endswith(".json") else "jsonl"
    if format not in FORMATS:
        raise ValueError(f'unknown JSON format {format!r}; use "jsonl" (one object per line) or "array"')
    return format


class JSONInputAdapter(ReadOptions, FileListInput, InputAdapter):
    """Read JSON Lines: one object per line. A line that is not a JSON object becomes an
    error record with its line number; blank lines are skipped.

    `columns`, `skip_rows`, `limit`, `byte_range` and `line_offset` choose what to read: see
    :mod:`zoopipe_core.adapters.read_options`. `split(n)` cuts the file into shards.

    ``format="array"`` (the default for a ``.json`` path) reads one JSON array of objects
    instead, element by element in constant memory; a broken element becomes an error record
    naming its index and byte offset, and error records number elements from 1.

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "in.jsonl")
        >>> _ = open(path, "w").write('{"a": 1}\\n{"a": [2]}\\n')
        >>> from zoopipe_core import Pipe, MemoryOutputAdapter
        >>> out = MemoryOutputAdapter()
        >>> _ = Pipe(JSONInputAdapter(path), out).run(); out.records
        [{'a': 1}, {'a': [2]}]
        >>> out = MemoryOutputAdapter()
        >>> _ = Pipe(JSONInputAdapter(path, skip_rows=1, columns=["a"]), out).run(); out.records
        [{'a': [2]}]
        >>> array = os.path.join(tempfile.mkdtemp(), "in.json")
        >>> _ = open(array, "w").write('[{"a": 1}, {"a": 2}]')
        >>> out = MemoryOutputAdapter()
        >>> _ = Pipe(JSONInputAdapter(array), out).run(); out.records
        [{'a': 1}, {'a': 2}]
    """

    name = "jsonl"
    split_kind = "jsonl"

    def input_suffixes(self) -> tuple[str, ...]:
        """A directory or prefix gives its JSON Lines files, or its ``.json`` files for
        ``format="array"``."""
        return (".json",) if self.format == "array" else (".jsonl", ".ndjson")

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        columns: Sequence[str] | None = None,
        skip_rows: int = 0,
        limit: int | None = None,
        byte_range: tuple[int, int] | None = None,
        line_offset: int = 0,
        format: str | None = None,
    ) -> None:
        first = path[0] if isinstance(path, (list, tuple)) else path
        self.format = _json_format(os.fspath(first), format)
        if self.format == "array" and byte_range is not None:
            raise ValueError('byte_range needs format="jsonl": a JSON array cannot be cut into byte ranges')
        self._set_read_options(
            columns=columns, skip_rows=skip_rows, limit=limit, byte_range=byte_range, line_offset=line_offset
        )
        self.path = os.fspath(self._take_paths(path))  # a list: see PipeManager.parallelize_pipe

    @property
    def source_name(self) -> str:
        return self.path

    def native_spec(self) -> JsonArraySource | JsonlSource:
        self._check_single_file()
        spec_class = JsonArraySource if self.format == "array" else JsonlSource
        compression = compression_for(self.path)
        name = self._source_label(self.path)
        return spec_class(url=self.path, name=name, compression=compression, read=self._read_spec())

    def __repr__(self) -> str:
        return f"JSONInputAdapter({self.path!r})"


class JSONOutputAdapter(OutputAdapter):
    """Write JSON Lines, fields in record order; or, with ``format="array"`` (the default for a
    ``.json`` path), one JSON array with an element per line; ``indent=N`` (array only) lays it
    out as ``json.dumps(records, indent=N)`` does. Dates and timestamps are written in ISO 8601,
    decimals as strings, bytes as UTF-8 text (base64 when not UTF-8).

    Example:
        >>> import tempfile, os
        >>> from zoopipe_core import Pipe, PyGeneratorInputAdapter
        >>> path = os.path.join(tempfile.mkdtemp(), "out.jsonl")
        >>> _ = Pipe(PyGeneratorInputAdapter([{"a": 1, "b": "x"}]), JSONOutputAdapter(path)).run()
        >>> open(path).read()
        '{"a":1,"b":"x"}\\n'
        >>> path = os.path.join(tempfile.mkdtemp(), "out.json")
        >>> _ = Pipe(PyGeneratorInputAdapter([{"a": 1}, {"a": 2}]), JSONOutputAdapter(path)).run()
        >>> open(path).read()
        '[\\n{"a":1},\\n{"a":2}\\n]\\n'
        >>> _ = Pipe(PyGeneratorInputAdapter([{"a": 1}]), JSONOutputAdapter(path, indent=2)).run()
        >>> print(open(path).read(), end="")
        [
          {
            "a": 1
          }
        ]
    """

    name = "jsonl"

    def __init__(
        self, path: str | os.PathLike[str], *, format: str | None = None, indent: int | None = None
    ) -> None:
        self.path = os.fspath(path)
        self.format = _json_format(self.path, format)
        if indent is not None:
            if isinstance(indent, bool) or not isinstance(indent, int) or indent < 0:
                raise ValueError(f"indent must be a number of spaces >= 0, got {indent!r}")
            if self.format != "array":
                raise ValueError(
                    f'indent={indent} needs format="array": JSON Lines holds one record per line, '
                    "so its records cannot be spread over indented lines; write a .json file or pass "
                    'format="array"'
                )
        self.indent = indent

    @property
    def target_name(self) -> str:
        return self.path

    def native_spec(self) -> JsonArraySink | JsonlSink:
        compression = compression_for(self.path)
        if self.format == "array":
            return JsonArraySink(url=self.path, name=self.path, compression=compression, indent=self.indent)
        return JsonlSink(url=self.path, name=self.path, compression=compression)

    def __repr__(self) -> str:
        return f"JSONOutputAdapter({self.path!r})"


# --------------------------------------------------------------------------- merging shard outputs


def merge_json_lines(target: Any, paths: list[str]) -> None:
    """JSON Lines: the parts one after another (gzip members and zstd frames concatenate too),
    appended in the kernel for local files, copied server-side on a store that merges (S3)."""
    if merge.all_local(target, paths):
        append_parts(target.path, [local_path(p) for p in paths], [0] * len(paths))
        return
    on_store = merge.store_merger(target, paths)
    if on_store is not None:
        on_store(target.path, [(path, 0) for path in paths])
        return

    def write(out: IO[bytes]) -> None:
        for path in paths:
            merge.copy_part(path, out)

    merge.publish(target.path, write)


_WHITESPACE = b" \t\r\n"


def merge_json_arrays(target: Any, paths: list[str]) -> None:
    """JSON arrays: one array holding the elements of every part, in part order."""

    def write(out: IO[bytes]) -> None:
        out.write(b"[")
        wrote_any = False
        for path in paths:
            with merge.open_read(path) as part:
                wrote_any = _copy_array_body(part, out, wrote_any, path)
        out.write(b"]\n")

    merge.publish(target.path, write)


def _copy_array_body(part: IO[bytes], out: IO[bytes], comma: bool, path: str) -> bool:
    """Copy the elements of the JSON array in ``part`` (no brackets); True if any was copied."""
    held = b""
    opened = copied = False
    while chunk := part.read(merge.CHUNK):
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


merge.register_merger("jsonl", merge.FormatMerger(merge_json_lines))
merge.register_merger("json", merge.FormatMerger(merge_json_arrays))
