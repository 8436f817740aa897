"""CSV input and output, read and written in Rust. `.gz` and `.zst` by suffix. The shards of a
parallel run are byte ranges of the input file; their outputs merge under one header."""

from __future__ import annotations

import gzip
import os
import shutil
from collections.abc import Sequence
from typing import IO, Any

from zoopipe_core.adapters import merge
from zoopipe_core.adapters.base import InputAdapter, OutputAdapter
from zoopipe_core.adapters.file_append import append_parts
from zoopipe_core.adapters.files import FileListInput
from zoopipe_core.adapters.native_spec import CsvSink, CsvSource
from zoopipe_core.adapters.read_options import ReadOptions
from zoopipe_core.adapters.storage import compression_for, local_path
from zoopipe_core.errors import ShardingError


def _single_char(name: str, value: str) -> str:
    if len(value) != 1 or not value.isascii():
        raise ValueError(f"{name} must be a single ASCII character, got {value!r}")
    return value


def _field_names(field_names: Sequence[str] | None, fieldnames: Sequence[str] | None) -> Sequence[str] | None:
    """`fieldnames` (the spelling of Python's csv module and of ZooPipe) is `field_names`."""
    if field_names is not None and fieldnames is not None:
        raise ValueError(
            "give the columns once: field_names=... or fieldnames=... (the same option, two spellings), "
            "not both"
        )
    columns = field_names if field_names is not None else fieldnames
    if isinstance(columns, str):
        raise TypeError(f"field_names must be a list of column names, got the string {columns!r}")
    return columns


def _null_values(values: Sequence[str]) -> list[str]:
    if isinstance(values, str) or not all(isinstance(v, str) for v in values):
        raise TypeError(f'null_values must be a list of strings, got {values!r}; write null_values=["NA"]')
    return list(values)


def suffix_delimiter(path: str) -> str:
    """The delimiter a file's name implies: tab for ``.tsv`` (also ``.tsv.gz``), comma otherwise.

    Example:
        >>> suffix_delimiter("data/a.tsv.gz"), suffix_delimiter("data/a.csv")
        ('\\t', ',')
    """
    return "\t" if ".tsv" in os.path.basename(path) else ","


class _CsvDialect:
    """What CSV input and output share: the file, its delimiter, quote character and columns."""

    def _set_dialect(
        self,
        path: str | os.PathLike[str],
        delimiter: str | None,
        quotechar: str,
        field_names: Sequence[str] | None,
    ) -> None:
        self.path = os.fspath(path)
        self.delimiter_by_suffix = delimiter is None
        self.delimiter = _single_char(
            "delimiter", suffix_delimiter(self.path) if delimiter is None else delimiter
        )
        self.quotechar = _single_char("quotechar", quotechar)
        self.field_names = list(field_names) if field_names is not None else None

    def _dialect_fields(self) -> dict[str, Any]:
        """The native spec's fields an input and an output of this dialect share."""
        return {
            "url": self.path,
            "name": self.path,
            "compression": compression_for(self.path),
            "delimiter": self.delimiter,
            "quotechar": self.quotechar,
            "field_names": self.field_names,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"


class CSVInputAdapter(ReadOptions, FileListInput, _CsvDialect, InputAdapter):
    """Read CSV: a header row (or explicit `field_names`), any delimiter and quote character,
    UTF-8 with or without BOM. `fieldnames=` (Python's csv and ZooPipe spelling) is the same
    option: with a header they rename its columns; for a file without one, add has_header=False.
    Every value arrives as a string; the schema model converts it.

    Nulls: an empty unquoted field is None, unless the model's field for the column does not
    accept None (a plain ``str`` field then reads ``""``). A quoted ``""`` is always ``""``.
    ``null_values=["NA", "\\N"]`` names more unquoted texts that are None by the same rule.

    `columns`, `skip_rows`, `limit`, `byte_range` and `line_offset` choose what to read: see
    :mod:`zoopipe_core.adapters.read_options`. `split(n)` cuts the file into shards.

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "users.csv")
        >>> _ = open(path, "w").write("id,name\\n1,Ada\\n")
        >>> from zoopipe_core import Pipe, MemoryOutputAdapter
        >>> out = MemoryOutputAdapter()
        >>> Pipe(CSVInputAdapter(path), out).run().success_count, out.records
        (1, [{'id': '1', 'name': 'Ada'}])
        >>> out = MemoryOutputAdapter()
        >>> _ = open(path, "a").write("2,Bob\\n3,Cy\\n")
        >>> _ = Pipe(CSVInputAdapter(path, columns=["name"], skip_rows=1, limit=1), out).run()
        >>> out.records
        [{'name': 'Bob'}]
        >>> [shard.byte_range for shard in CSVInputAdapter(path).split(2)]
        [(8, 20), (20, 25)]
        >>> _ = open(path, "a").write('4,\\n5,""\\n6,NA\\n')
        >>> out = MemoryOutputAdapter()
        >>> _ = Pipe(CSVInputAdapter(path, skip_rows=3, null_values=["NA"]), out).run()
        >>> out.records
        [{'id': '4', 'name': None}, {'id': '5', 'name': ''}, {'id': '6', 'name': None}]
    """

    name = "csv"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        delimiter: str | None = None,
        quotechar: str = '"',
        has_header: bool = True,
        field_names: Sequence[str] | None = None,
        fieldnames: Sequence[str] | None = None,
        columns: Sequence[str] | None = None,
        skip_rows: int = 0,
        limit: int | None = None,
        byte_range: tuple[int, int] | None = None,
        line_offset: int = 0,
        null_values: Sequence[str] = (),
    ) -> None:
        self._set_read_options(
            columns=columns, skip_rows=skip_rows, limit=limit, byte_range=byte_range, line_offset=line_offset
        )
        path = self._take_paths(path)  # a list of files is read by PipeManager.parallelize_pipe
        self._set_dialect(path, delimiter, quotechar, _field_names(field_names, fieldnames))
        self.has_header = has_header
        self.null_values = _null_values(null_values)
        if not has_header and not self.field_names:
            raise ValueError("has_header=False needs field_names: name the columns")

    @property
    def source_name(self) -> str:
        return self.path

    split_kind = "csv"
    file_suffixes = (".csv", ".tsv")

    def resolve_files(self) -> list[str]:
        """As for any file input; without an explicit delimiter, the first file's suffix then
        chooses it (a directory of ``.tsv`` files is tab-separated)."""
        paths = super().resolve_files()
        if self.delimiter_by_suffix:
            self.delimiter = suffix_delimiter(self.path)
        return paths

    def _for_file(self, path: str) -> Any:
        shard = super()._for_file(path)
        if self.delimiter_by_suffix:
            shard.delimiter = suffix_delimiter(path)
        return shard

    def split_options(self) -> dict[str, Any]:
        return {"delimiter": self.delimiter, "quotechar": self.quotechar, "has_header": self.has_header}

    def native_spec(self) -> CsvSource:
        self._check_single_file()
        return CsvSource(
            **{**self._dialect_fields(), "name": self._source_label(self.path)},
            has_header=self.has_header,
            null_values=self.null_values,
            read=self._read_spec(),
            ends_at_cut=self.ends_at_cut,
        )


class CSVOutputAdapter(_CsvDialect, OutputAdapter):
    """Write CSV with one header row; None as an empty field and "" as `""` (so the file reads
    back to the same records), booleans as `true`/`false`.

    Columns are `field_names` (or `fieldnames`, the same option) if given, otherwise the first
    record's fields. A record with a field outside those columns goes to the error output rather
    than losing the field.

    Example:
        >>> import tempfile, os
        >>> from zoopipe_core import Pipe, PyGeneratorInputAdapter
        >>> path = os.path.join(tempfile.mkdtemp(), "out.csv")
        >>> _ = Pipe(PyGeneratorInputAdapter([{"a": 1, "b": None, "c": True}, {"a": "", "b": "x,y"}]),
        ...          CSVOutputAdapter(path)).run()
        >>> open(path).read()
        'a,b,c\\n1,,true\\n"","x,y",\\n'
    """

    name = "csv"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        delimiter: str | None = None,
        quotechar: str = '"',
        header: bool = True,
        field_names: Sequence[str] | None = None,
        fieldnames: Sequence[str] | None = None,
    ) -> None:
        self._set_dialect(path, delimiter, quotechar, _field_names(field_names, fieldnames))
        self.header = header

    @property
    def target_name(self) -> str:
        return self.path

    def native_spec(self) -> CsvSink:
        return CsvSink(**self._dialect_fields(), header=self.header)


# --------------------------------------------------------------------------- merging shard outputs


def check_csv_mergeable(target: Any) -> None:
    """ShardingError for zstd-compressed CSV: merging drops each part's header, which needs
    the parts decompressed in Python."""
    if compression_for(target.path) == "zstd":
        raise ShardingError(
            f"cannot merge zstd-compressed CSV parts into {target.path}: merging drops each part's header, "
            "which needs zstd decompression in Python (not installed); write .csv or .csv.gz, or "
            "use should_merge=False"
        )


def merge_csv(target: Any, paths: list[str]) -> None:
    """CSV: the first non-empty part whole; the others without their header (checked equal).
    Uncompressed parts on a store with its own merge (S3) are merged there, copied server-side
    from after their header; gzip parts are decompressed and recompressed here."""
    header_on = getattr(target, "header", True)
    gz = compression_for(target.path) == "gzip"
    if not gz and merge.all_local(target, paths):
        _append_csv_parts(target, [local_path(p) for p in paths], header_on)
        return
    on_store = None if gz else merge.store_merger(target, paths)
    if on_store is not None:
        on_store(target.path, _csv_part_starts(target, paths, header_on))
        return

    def write(raw: IO[bytes]) -> None:
        out: IO[bytes] | gzip.GzipFile = gzip.GzipFile(fileobj=raw, mode="wb") if gz else raw
        header: bytes | None = None
        for path in paths:
            with merge.open_read(path) as opened:
                part: IO[bytes] | gzip.GzipFile = gzip.GzipFile(fileobj=opened, mode="rb") if gz else opened
                first = part.readline() if header_on else b""
                if header_on and not first:
                    continue  # a shard that wrote no records
                if header is None:
                    header = first
                    out.write(first)
                else:
                    _check_csv_header(target, path, first, header)
                shutil.copyfileobj(part, out, merge.CHUNK)
        if gz:
            out.close()

    merge.publish(target.path, write)


def _check_csv_header(target: Any, path: str, first: bytes, header: bytes) -> None:
    if first != header:
        raise ShardingError(
            f"cannot merge the CSV parts of {target.path}: {path} has the header "
            f"{first!r}, the first part {header!r}. Give CSVOutputAdapter field_names=[...] "
            "so every shard writes the same columns"
        )


def _csv_part_starts(target: Any, paths: list[str], header_on: bool) -> list[tuple[str, int]]:
    """Each non-empty part with the offset its bytes are kept from: 0 for the first (its header
    is the merged file's), past the header line for the others. Only header lines are read."""
    if not header_on:
        return [(path, 0) for path in paths]
    starts: list[tuple[str, int]] = []
    header: bytes | None = None
    for path in paths:
        first = merge.first_line(path)
        if not first:
            continue  # a shard that wrote no records wrote no header either
        if header is None:
            header = first
            starts.append((path, 0))
        else:
            _check_csv_header(target, path, first, header)
            starts.append((path, len(first)))
    return starts


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


merge.register_merger("csv", merge.FormatMerger(merge_csv, check=check_csv_mergeable))
