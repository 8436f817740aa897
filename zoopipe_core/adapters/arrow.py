"""Arrow IPC input and output, read and written in Rust (arrow-rs): the file format
(``.arrow``, ``.feather``, ``.ipc``) and the stream format (``.arrows``).

An input's format is detected from its first bytes. Local paths are read in place; of an fsspec
URL, only what is read is fetched, by ranged reads (a file's footer and the record batches read;
a stream from its start). An input is split into shards by record batches (see
:func:`split_arrow`): a file from its footer and the batches' message headers alone, a local
stream by reading it through; a stream on a URL is not split. A list of files is one shard per
file. The shards' outputs merge one record batch at a time (:func:`merge_arrow`, with pyarrow).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import IO, Any

from zoopipe_core.adapters import merge
from zoopipe_core.adapters.base import InputAdapter, OutputAdapter
from zoopipe_core.adapters.native_spec import ArrowSink, ArrowSource
from zoopipe_core.adapters.ranged import DRIVER_READS, RangedFile, read_range
from zoopipe_core.adapters.storage import is_local, local_path
from zoopipe_core.adapters.tables import TableFileInput, import_pyarrow, split_rows
from zoopipe_core.errors import ShardingError

FORMATS = ("file", "stream")


class ArrowInputAdapter(TableFileInput, InputAdapter):
    """Read an Arrow IPC file or stream, with the types kept as for Parquet
    (:class:`~zoopipe_core.adapters.parquet.ParquetInputAdapter`). ``columns``, ``skip_rows`` and
    ``limit`` choose what to read. A truncated stream fails naming the file and the batch.

    ``split(n)`` (``PipeManager.parallelize_pipe``) cuts one file into row ranges: whole record
    batches, balanced by rows, or rows within batches when there are fewer batches than ``n``.
    The rows of each batch of an IPC file come from its footer and the batches' message
    headers (no batch body is read, and a shard fetches only its own batches); a local stream
    is read through with pyarrow (memory-mapped, not copied) to count them, and a stream on a
    URL cannot be split (``ShardingError``; in a list it is one shard). A list of files is one
    shard per file; a single pipe reads one file.

    Example:
        >>> import tempfile, os
        >>> from zoopipe_core import Pipe, PyGeneratorInputAdapter, MemoryOutputAdapter
        >>> path = os.path.join(tempfile.mkdtemp(), "data.arrows")
        >>> _ = Pipe(PyGeneratorInputAdapter([{"n": 1}, {"n": 2}]), ArrowOutputAdapter(path)).run()
        >>> out = MemoryOutputAdapter()
        >>> _ = Pipe(ArrowInputAdapter(path, limit=1), out).run(); out.records
        [{'n': 1}]
        >>> [(shard.skip_rows, shard.limit) for shard in ArrowInputAdapter(path).split(2)]
        [(0, 1), (1, 1)]
    """

    name = "arrow"

    spec_class = ArrowSource
    file_suffixes = (".arrow", ".feather", ".ipc", ".arrows")

    def split_one_file(self, workers: int) -> list[InputAdapter]:
        """Shards by record batches, or rows within batches when there are fewer batches than
        workers (PipeManager.parallelize_pipe; see :func:`split_arrow`)."""
        return split_arrow(self, workers)

    def can_split_file(self, path: str) -> bool:
        """A file of a multi-file input is cut by record batches unless it is a stream on a URL
        (it has no index of its batches; it is one shard)."""
        if is_local(path):
            return True
        try:
            return is_ipc_file(path)
        except OSError:
            return False  # missing: its shard reports it when it runs


class ArrowOutputAdapter(OutputAdapter):
    """Write Arrow IPC: ``format="file"`` (random access; also Feather v2) or ``"stream"``.
    By default a path ending in ``.arrows`` is a stream, any other a file. The schema is chosen
    as for :class:`~zoopipe_core.adapters.parquet.ParquetOutputAdapter`.

    Example:
        >>> import tempfile, os
        >>> from zoopipe_core import Pipe, PyGeneratorInputAdapter
        >>> path = os.path.join(tempfile.mkdtemp(), "out.arrow")
        >>> _ = Pipe(PyGeneratorInputAdapter([{"a": "x"}]), ArrowOutputAdapter(path)).run()
        >>> open(path, "rb").read(6)
        b'ARROW1'
    """

    name = "arrow"

    def __init__(self, path: str | os.PathLike[str], *, format: str | None = None) -> None:
        self.path = os.fspath(path)
        if format is None:
            format = "stream" if self.path.endswith(".arrows") else "file"
        if format not in FORMATS:
            raise ValueError(f'unknown Arrow format {format!r}; use "file" or "stream"')
        self.format = format

    @property
    def target_name(self) -> str:
        return self.path

    def native_spec(self) -> ArrowSink:
        return ArrowSink(url=self.path, name=self.path, format=self.format)

    def __repr__(self) -> str:
        return f"ArrowOutputAdapter({self.path!r}, format={self.format!r})"


# --------------------------------------------------------------------------- shards

_ARROW_FILE_MAGIC = b"ARROW1"  # starts the IPC file format; anything else is read as a stream


def is_ipc_file(url: str) -> bool:
    """Whether ``url`` starts as the Arrow IPC file format does (else it is read as a stream),
    by one 6-byte ranged read."""
    return read_range(url, 0, len(_ARROW_FILE_MAGIC)) == _ARROW_FILE_MAGIC


def arrow_batch_rows(path: str) -> list[int]:
    """Rows per non-empty record batch of an Arrow IPC file or stream, the format told by the
    first bytes as the Rust reader tells it.

    A file's rows come from its footer and each batch's message header (read by Rust, counted
    in :data:`~zoopipe_core.adapters.ranged.DRIVER_READS`), never a batch body. A stream has no
    index: a local one is read through (memory-mapped, not copied); one on a URL cannot be
    split without reading it whole, so it is a ShardingError.

    Example:
        >>> import io, fsspec, pyarrow as pa, pyarrow.ipc as ipc
        >>> buffer = io.BytesIO()
        >>> with ipc.new_file(buffer, pa.schema([("n", pa.int64())])) as writer:
        ...     for size in (2, 0, 3):
        ...         writer.write_batch(pa.record_batch([pa.array(range(size), pa.int64())], names=["n"]))
        >>> fsspec.filesystem("memory").pipe("/arrow-doc/t.arrow", buffer.getvalue())
        >>> arrow_batch_rows("memory://arrow-doc/t.arrow")
        [2, 3]
    """
    if is_ipc_file(path):
        from zoopipe_core import _native

        rows = _native.ipc_file_batch_rows(RangedFile(path, counter=DRIVER_READS))
    elif is_local(path):
        rows = _local_stream_batch_rows(path)
    else:
        raise ShardingError(
            f"{path} is an Arrow IPC stream on a URL, which cannot be split: a stream has no index "
            "of its record batches, so finding them means reading it whole. Give a list of files "
            "(one shard each), or write the IPC file format (ArrowOutputAdapter(..., format='file'))"
        )
    # An empty batch holds no row to give a shard; dropping it keeps shards from being empty.
    return [count for count in rows if count]


def _local_stream_batch_rows(path: str) -> list[int]:
    """Rows per record batch of a local IPC stream, read through memory-mapped."""
    ipc = import_pyarrow(
        "splitting an Arrow IPC stream into shards (it counts the rows of each record batch)", "pyarrow.ipc"
    )
    import pyarrow as pa

    with pa.memory_map(local_path(path)) as source:
        return [batch.num_rows for batch in ipc.open_stream(source)]


def split_arrow(adapter: Any, workers: int) -> list[Any]:
    """Shards of one Arrow IPC file or stream by record batches (rows within batches when there
    are fewer batches than workers), each read as ``skip_rows``/``limit`` of the file."""
    return split_rows(adapter, workers, arrow_batch_rows, "an Arrow IPC file or stream")


def merge_arrow(target: Any, paths: list[str]) -> None:
    """Arrow IPC (file or stream format, as the parts are): every record batch, one at a time."""
    ipc = import_pyarrow("merging Arrow parts", "pyarrow.ipc")
    import pyarrow as pa

    def batches(part: IO[bytes]) -> tuple[Any, Iterator[Any], bool]:
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
                with merge.open_read(path) as part:
                    schema, parts, file_format = batches(part)
                    if writer is None:
                        new = ipc.new_file if file_format else ipc.new_stream
                        writer = new(merge.WriteSink(out), schema)
                    for batch in parts:
                        writer.write_batch(batch)
        finally:
            if writer is not None:
                writer.close()

    merge.publish(target.path, write)


merge.register_merger("arrow", merge.FormatMerger(merge_arrow))
