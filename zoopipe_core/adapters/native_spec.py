"""What the Rust executor reads and writes, typed: one class per native source and sink kind.

A native adapter's ``native_spec()`` returns one of these, naming its file by ``url``. The runner
opens the url (:func:`~zoopipe_core.adapters.storage.open_input`, ``PendingOutput.location()``),
gives the spec its :class:`Location` and the pipe's details (``not_null_columns``, a table
schema), and hands ``to_native()`` to ``zoopipe_core._native.run_pipe``. That dict is parsed
once per run, key by key, in the exec crate (``core-rs/exec/src/spec``): a field here is a key
there, under the same name.

Example:
    >>> spec = CsvSource(url="in.csv", name="in.csv", delimiter=";").located(Location(path="in.csv"))
    >>> native = spec.to_native()
    >>> native["kind"], native["path"], native["delimiter"], native["skip_rows"]
    ('csv', 'in.csv', ';', 0)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

try:
    from typing import dataclass_transform
except ImportError:  # Python 3.10
    from typing_extensions import dataclass_transform

_Spec = TypeVar("_Spec", bound="NativeSpec")
_T = TypeVar("_T")


# Every spec is created per run and per process start, so its class is cheap to define: the
# decorator generates only __init__ and the frozen __setattr__/__delattr__, and the value
# methods (repr, equality, hash, by fields) are written once in _Value.
@dataclass_transform(frozen_default=True, kw_only_default=True)
def _spec(cls: type[_T]) -> type[_T]:
    return dataclass(frozen=True, kw_only=True, repr=False, eq=False)(cls)


class _Value:
    """repr, ==, and hash by dataclass fields, for the frozen spec classes below."""

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f.name) for f in dataclasses.fields(self))  # type: ignore[arg-type]

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self))  # type: ignore[arg-type]
        return f"{type(self).__name__}({shown})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash((type(self), *map(_hashable, self._values())))


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


@_spec
class Location(_Value):
    """Where a file is read or written: a local ``path`` (opened in Rust) or an open binary
    ``file`` object (an fsspec file, read or written through Python).

    Example:
        >>> Location(path="/data/in.csv").to_native()
        {'path': '/data/in.csv'}
    """

    path: str | None = None
    file: Any = None

    def __post_init__(self) -> None:
        if (self.path is None) == (self.file is None):
            raise ValueError("a Location is a path or a file object: give exactly one")

    def to_native(self) -> dict[str, Any]:
        return {"path": self.path} if self.path is not None else {"file": self.file}


@_spec
class ReadSpec(_Value):
    """What part of an input to read (see :mod:`zoopipe_core.adapters.read_options`). Parquet,
    Arrow and JSON array readers take no ``byte_range`` or ``line_offset``.

    Example:
        >>> ReadSpec(columns=["a"], limit=10)
        ReadSpec(columns=['a'], skip_rows=0, limit=10, byte_range=None, line_offset=0)
    """

    columns: list[str] | None = None
    skip_rows: int = 0
    limit: int | None = None
    byte_range: tuple[int, int] | None = None
    line_offset: int = 0


@_spec
class NativeSpec(_Value):
    """A source or sink of a native kind: ``name`` (what messages and error records call it)
    and the options of its kind, each a key of the native dict.

    Example:
        >>> CountSink().to_native()
        {'kind': 'count', 'name': 'count'}
    """

    kind: ClassVar[str] = ""
    name: str

    def _native_fields(self) -> dict[str, Any]:
        """The fields as native keys; nested specs (a ReadSpec) are flattened into them."""
        out: dict[str, Any] = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if isinstance(value, ReadSpec):
                out.update((f.name, getattr(value, f.name)) for f in dataclasses.fields(value))
            else:
                out[item.name] = value
        return out

    def to_native(self) -> dict[str, Any]:
        """The dict ``zoopipe_core._native.run_pipe`` takes (values are not copied: file objects,
        writers and iterators pass through as they are)."""
        return {"kind": self.kind, **self._native_fields()}


@_spec
class FileSpec(NativeSpec):
    """A spec of a file: its ``url`` as the user gave it, and where the runner opened it.

    Example:
        >>> spec = JsonlSink(url="out.jsonl", name="out.jsonl")
        >>> spec.located(Location(path=".out.jsonl.tmp")).to_native()
        {'kind': 'jsonl', 'name': 'out.jsonl', 'compression': 'none', 'path': '.out.jsonl.tmp'}
    """

    #: Read with random access: a URL is opened as a ranged file
    #: (:class:`~zoopipe_core.adapters.ranged.RangedFile`), fetched only where it is read.
    random_access: ClassVar[bool] = False

    url: str
    compression: str = "none"
    location: Location | None = None

    def located(self: _Spec, location: Location) -> _Spec:
        """This spec, reading or writing at ``location``."""
        return dataclasses.replace(self, location=location)  # type: ignore[call-arg]

    def to_native(self) -> dict[str, Any]:
        if self.location is None:
            raise ValueError(f"{self.name}: open the spec's url first (it has no Location yet)")
        fields = self._native_fields()
        del fields["url"], fields["location"]
        return {"kind": self.kind, **fields, **self.location.to_native()}


# Sources ------------------------------------------------------------------------------------


@_spec
class CsvSource(FileSpec):
    """A CSV file. ``not_null_columns``: columns whose empty fields stay text (the model's
    fields that do not accept None). A ``read.byte_range`` of a file object (a shard of a file on
    a URL) holds no header: ``has_header=False`` with ``field_names``.

    Example:
        >>> CsvSource(url="a.csv", name="a.csv").with_not_null_columns(["id"]).not_null_columns
        ['id']
    """

    kind: ClassVar[str] = "csv"
    delimiter: str = ","
    quotechar: str = '"'
    has_header: bool = True
    field_names: list[str] | None = None
    null_values: list[str] = field(default_factory=list)
    not_null_columns: list[str] = field(default_factory=list)
    read: ReadSpec = ReadSpec()
    #: The ``read.byte_range`` ends at a cut chosen from a small window (a shard of a file on a
    #: URL): a record open there fails the run instead of becoming an error record.
    ends_at_cut: bool = False

    def with_not_null_columns(self, columns: list[str]) -> CsvSource:
        return dataclasses.replace(self, not_null_columns=columns)


@_spec
class JsonlSource(FileSpec):
    """A JSON Lines file.

    Example:
        >>> JsonlSource(url="a.jsonl", name="a.jsonl", read=ReadSpec(limit=2)).read.limit
        2
    """

    kind: ClassVar[str] = "jsonl"
    read: ReadSpec = ReadSpec()


@_spec
class JsonArraySource(FileSpec):
    """A file holding one JSON array of records.

    Example:
        >>> JsonArraySource(url="a.json", name="a.json").kind
        'json'
    """

    kind: ClassVar[str] = "json"
    read: ReadSpec = ReadSpec()


@_spec
class ParquetSource(FileSpec):
    """A Parquet file, read with random access: of a URL, only the footer and the row groups
    read are fetched.

    Example:
        >>> ParquetSource(url="t.parquet", name="t.parquet").kind
        'parquet'
    """

    kind: ClassVar[str] = "parquet"
    random_access: ClassVar[bool] = True
    read: ReadSpec = ReadSpec()


@_spec
class ArrowSource(FileSpec):
    """An Arrow IPC file or stream, read with random access: of a URL, only the footer and the
    record batches read are fetched (a stream is read from its start).

    Example:
        >>> ArrowSource(url="t.arrow", name="t.arrow").kind
        'arrow'
    """

    kind: ClassVar[str] = "arrow"
    random_access: ClassVar[bool] = True
    read: ReadSpec = ReadSpec()


@_spec
class PythonSource(NativeSpec):
    """The batches (lists of record dicts) of an input adapter read through Python.

    Example:
        >>> PythonSource(name="gen", batches=iter([[{"a": 1}]])).to_native()["kind"]
        'python'
    """

    kind: ClassVar[str] = "python"
    batches: Any


#: Every source spec: what ``InputAdapter.native_spec()`` returns (or None).
SourceSpec = CsvSource | JsonlSource | JsonArraySource | ParquetSource | ArrowSource | PythonSource


# Sinks --------------------------------------------------------------------------------------


@_spec
class CountSink(NativeSpec):
    """Writes nothing; the run counts the records.

    Example:
        >>> CountSink().name
        'count'
    """

    kind: ClassVar[str] = "count"
    name: str = "count"


@_spec
class JsonlSink(FileSpec):
    """JSON Lines.

    Example:
        >>> JsonlSink(url="o.jsonl.gz", name="o.jsonl.gz", compression="gzip").compression
        'gzip'
    """

    kind: ClassVar[str] = "jsonl"


@_spec
class CsvSink(FileSpec):
    """CSV with a header row (unless ``header=False``); ``field_names``: the columns, when fixed.

    Example:
        >>> CsvSink(url="o.csv", name="o.csv", field_names=["a"]).field_names
        ['a']
    """

    kind: ClassVar[str] = "csv"
    delimiter: str = ","
    quotechar: str = '"'
    header: bool = True
    field_names: list[str] | None = None


@_spec
class JsonArraySink(FileSpec):
    """One JSON array; ``indent`` lays it out as ``json.dumps(records, indent=...)`` does.

    Example:
        >>> JsonArraySink(url="o.json", name="o.json", indent=2).indent
        2
    """

    kind: ClassVar[str] = "json"
    indent: int | None = None


@_spec
class TableSink(FileSpec):
    """A table output (Parquet, Arrow). ``schema``: the Arrow schema as JSON (see
    :mod:`zoopipe_core.pipe.arrow_schema`); None: the input table's, or inferred from records.

    Example:
        >>> ParquetSink(url="o.parquet", name="o.parquet").with_schema("[]").schema
        '[]'
    """

    schema: str | None = None

    def with_schema(self: _Table, schema: str | None) -> _Table:
        return dataclasses.replace(self, schema=schema)


_Table = TypeVar("_Table", bound=TableSink)


@_spec
class ParquetSink(TableSink):
    """Parquet, with ``codec`` (snappy, zstd, gzip, lz4, none) and rows per row group.

    Example:
        >>> ParquetSink(url="o.parquet", name="o.parquet").codec
        'snappy'
    """

    kind: ClassVar[str] = "parquet"
    codec: str = "snappy"
    row_group_size: int = 122_880


@_spec
class ArrowSink(TableSink):
    """Arrow IPC, ``format`` "file" or "stream".

    Example:
        >>> ArrowSink(url="o.arrows", name="o.arrows", format="stream").format
        'stream'
    """

    kind: ClassVar[str] = "arrow"
    format: str = "file"


@_spec
class PythonSink(NativeSpec):
    """An output adapter's writer, given each batch of records (``writer.write_batch(records)``).

    Example:
        >>> PythonSink(name="memory", writer=None).to_native()["kind"]
        'python'
    """

    kind: ClassVar[str] = "python"
    writer: Any


#: Every sink spec: what ``OutputAdapter.native_spec()`` returns (or None).
SinkSpec = CountSink | JsonlSink | CsvSink | JsonArraySink | ParquetSink | ArrowSink | PythonSink
