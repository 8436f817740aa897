"""Arrow IPC input and output, read and written in Rust (arrow-rs): the file format
(``.arrow``, ``.feather``, ``.ipc``) and the stream format (``.arrows``).

An input's format is detected from its first bytes. Local paths are read in place; fsspec URLs
are read into memory first. An input is split into shards by record batches (see
:func:`split_arrow`), or given as a list of files, one shard each; the shards' outputs merge one
record batch at a time (:func:`merge_arrow`). Both need pyarrow.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import IO, Any

import fsspec

from zoopipe_core.adapters import merge
from zoopipe_core.adapters.base import InputAdapter, OutputAdapter
from zoopipe_core.adapters.native_spec import ArrowSink, ArrowSource
from zoopipe_core.adapters.storage import is_local, local_path
from zoopipe_core.adapters.tables import TableFileInput, import_pyarrow, split_rows

FORMATS = ("file", "stream")


class ArrowInputAdapter(TableFileInput, InputAdapter):
    """Read an Arrow IPC file or stream, with the types kept as for Parquet
    (:class:`~zoopipe_core.adapters.parquet.ParquetInputAdapter`). ``columns``, ``skip_rows`` and
    ``limit`` choose what to read. A truncated stream fails naming the file and the batch.

    ``split(n)`` (``PipeManager.parallelize_pipe``) cuts one file into row ranges: whole record
    batches, balanced by rows, or rows within batches when there are fewer batches than ``n``.
    It needs pyarrow to count the rows of each batch, and reads a stream through to do so (a
    local file is memory-mapped, not copied). A list of files is one shard per file; a single
    pipe reads one file.

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


def arrow_batch_rows(path: str) -> list[int]:
    """Rows per non-empty record batch of an Arrow IPC file or stream, the format told by the
    first bytes as the Rust reader tells it. A stream has no index, so it is read through; a
    local file is memory-mapped, so its batches are counted without being copied."""
    ipc = import_pyarrow(
        "splitting an Arrow IPC input into shards (it counts the rows of each record batch)", "pyarrow.ipc"
    )
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
