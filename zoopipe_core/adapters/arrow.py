"""Arrow IPC input and output, read and written in Rust (arrow-rs): the file format
(``.arrow``, ``.feather``, ``.ipc``) and the stream format (``.arrows``).

An input's format is detected from its first bytes. Local paths are read in place; fsspec URLs
are read into memory first. An input is split into shards by record batches (see
:func:`zoopipe_core.adapters.sharding.split_arrow`), or given as a list of files, one shard each.
"""

from __future__ import annotations

import os

from zoopipe_core.adapters.base import InputAdapter, OutputAdapter
from zoopipe_core.adapters.native_spec import ArrowSink, ArrowSource
from zoopipe_core.adapters.read_options import TableFileInput
from zoopipe_core.adapters.sharding import split_arrow

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

    def _split_file(self, workers: int) -> list[InputAdapter]:
        """Shards by record batches, or rows within batches when there are fewer batches than
        workers (PipeManager.parallelize_pipe; see zoopipe_core.adapters.sharding.split_arrow)."""
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
            raise ValueError(f"unknown Arrow format {format!r}; use \"file\" or \"stream\"")
        self.format = format

    @property
    def target_name(self) -> str:
        return self.path

    def native_spec(self) -> ArrowSink:
        return ArrowSink(url=self.path, name=self.path, format=self.format)

    def __repr__(self) -> str:
        return f"ArrowOutputAdapter({self.path!r}, format={self.format!r})"
