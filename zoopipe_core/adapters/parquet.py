"""Parquet input and output, read and written in Rust (arrow-rs).

Reading pushes ``columns`` into the Parquet reader, so other columns are never decoded (a
schema model does not narrow what is read: error records carry whole rows); ``skip_rows`` and
``limit`` are applied there too. Writing builds Arrow record batches in the encoder threads and
writes row groups in the writer thread.
Local paths are read in place; of an fsspec URL (``s3://``, ``memory://``), only the footer and
the row groups read are fetched, by ranged reads.

A parallel run splits one file by row groups from its footer alone (:func:`split_parquet`: the
driver reads the footer, each shard then fetches only its own row groups) and merges the
shards' outputs one row group at a time (:func:`merge_parquet`); both need pyarrow.
"""

from __future__ import annotations

import os
from typing import IO, Any

from zoopipe_core.adapters import merge
from zoopipe_core.adapters.base import InputAdapter, OutputAdapter
from zoopipe_core.adapters.native_spec import ParquetSink, ParquetSource
from zoopipe_core.adapters.ranged import object_size, read_range
from zoopipe_core.adapters.tables import TableFileInput, import_pyarrow, split_rows
from zoopipe_core.errors import ShardingError

CODECS = ("snappy", "zstd", "gzip", "lz4", "none")


class ParquetInputAdapter(TableFileInput, InputAdapter):
    """Read a Parquet file. Values keep their types: timestamps (with their time zone), dates,
    decimals, lists and structs arrive as ``datetime``, ``date``, ``Decimal``, lists and dicts.

    ``columns=[...]`` reads only those columns (a missing one is an error); ``skip_rows`` and
    ``limit`` choose the rows. A damaged file fails with the file and row group named.

    ``split(n)`` (``PipeManager.parallelize_pipe``) cuts one file into row ranges: whole row
    groups, balanced by rows, or rows within groups when there are fewer groups than ``n``.
    The driver reads only the footer; a shard of a URL fetches only its row groups.
    A list of files is one shard per file; a single pipe reads one file.

    Example:
        >>> import tempfile, os
        >>> from zoopipe_core import Pipe, PyGeneratorInputAdapter, MemoryOutputAdapter
        >>> path = os.path.join(tempfile.mkdtemp(), "users.parquet")
        >>> _ = Pipe(PyGeneratorInputAdapter([{"id": i, "name": f"u{i}"} for i in range(3)]),
        ...          ParquetOutputAdapter(path)).run()
        >>> out = MemoryOutputAdapter()
        >>> _ = Pipe(ParquetInputAdapter(path, columns=["id"], skip_rows=1), out).run(); out.records
        [{'id': 1}, {'id': 2}]
        >>> [(shard.skip_rows, shard.limit) for shard in ParquetInputAdapter(path).split(2)]
        [(0, 2), (2, 1)]
    """

    name = "parquet"

    spec_class = ParquetSource
    file_suffixes = (".parquet",)

    def split_one_file(self, workers: int) -> list[InputAdapter]:
        """Shards by row groups, or rows within groups when there are fewer groups than workers
        (PipeManager.parallelize_pipe; see :func:`split_parquet`)."""
        return split_parquet(self, workers)


class ParquetOutputAdapter(OutputAdapter):
    """Write a Parquet file: ``compression`` is one of snappy (default), zstd, gzip, lz4, none;
    ``row_group_size`` the most rows in a row group.

    The schema comes from the pipe's schema model (see :mod:`zoopipe_core.pipe.arrow_schema`); without
    one, from the input file when it is Parquet or Arrow (exactly, for a pipe with no Python
    stage); otherwise it is inferred from the records. A record that does not fit the schema goes
    to the error output (stage ``serialize``), naming the column. The file appears under its name
    only when the run succeeded.

    Example:
        >>> import tempfile, os
        >>> from zoopipe_core import Pipe, PyGeneratorInputAdapter
        >>> path = os.path.join(tempfile.mkdtemp(), "out.parquet")
        >>> Pipe(PyGeneratorInputAdapter([{"a": 1}, {"a": None}]),
        ...      ParquetOutputAdapter(path, compression="zstd")).run().success_count
        2
        >>> open(path, "rb").read(4)
        b'PAR1'
    """

    name = "parquet"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        compression: str = "snappy",
        row_group_size: int = 122_880,
    ) -> None:
        if compression not in CODECS:
            raise ValueError(f"unknown Parquet compression {compression!r}; use one of {', '.join(CODECS)}")
        if not isinstance(row_group_size, int) or row_group_size < 1:
            raise ValueError(f"row_group_size must be an int >= 1, got {row_group_size!r}")
        self.path = os.fspath(path)
        self.compression = compression
        self.row_group_size = row_group_size

    @property
    def target_name(self) -> str:
        return self.path

    def native_spec(self) -> ParquetSink:
        return ParquetSink(
            url=self.path, name=self.path, codec=self.compression, row_group_size=self.row_group_size
        )

    def __repr__(self) -> str:
        return f"ParquetOutputAdapter({self.path!r}, compression={self.compression!r})"


# --------------------------------------------------------------------------- shards


_MAGIC = b"PAR1"


def parquet_footer(url: str) -> bytes:
    """The footer of the Parquet file at ``url`` (its metadata, length and magic), by two ranged
    reads counted in :data:`~zoopipe_core.adapters.ranged.DRIVER_READS`; no other byte is read.

    Example:
        >>> import io, fsspec, pyarrow as pa, pyarrow.parquet as pq
        >>> buffer = io.BytesIO(); pq.write_table(pa.table({"id": [1, 2, 3]}), buffer)
        >>> fsspec.filesystem("memory").pipe("/parquet-doc/t.parquet", buffer.getvalue())
        >>> footer = parquet_footer("memory://parquet-doc/t.parquet")
        >>> footer[-4:], len(footer) < len(buffer.getvalue())
        (b'PAR1', True)
    """
    size = object_size(url)
    if size < 2 * len(_MAGIC) + 4:
        raise ValueError(f"{size} bytes is too short for a Parquet file")
    tail = read_range(url, size - 8, size)
    if tail[4:] != _MAGIC:
        raise ValueError("its last bytes are not the Parquet footer's (PAR1): it is truncated or not Parquet")
    length = int.from_bytes(tail[:4], "little")
    if length + 8 > size:
        raise ValueError(f"its footer claims {length} bytes, more than the file holds: it is truncated")
    return read_range(url, size - 8 - length, size - 8) + tail


def parquet_group_rows(path: str) -> list[int]:
    """Rows per row group of a Parquet file, from its footer alone (:func:`parquet_footer`).

    Example:
        >>> import io, fsspec, pyarrow as pa, pyarrow.parquet as pq
        >>> buffer = io.BytesIO(); pq.write_table(pa.table({"id": range(5)}), buffer, row_group_size=2)
        >>> fsspec.filesystem("memory").pipe("/parquet-doc/groups.parquet", buffer.getvalue())
        >>> parquet_group_rows("memory://parquet-doc/groups.parquet")
        [2, 2, 1]
    """
    pq = import_pyarrow("splitting a Parquet file into shards (it reads the row group sizes)")
    import pyarrow as pa

    # pyarrow reads a footer from the end of what it is given, so the footer alone will do.
    metadata = pq.read_metadata(pa.BufferReader(parquet_footer(path)))
    return [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]


def split_parquet(adapter: Any, workers: int) -> list[Any]:
    """Shards of one Parquet file by row groups (rows within groups when there are fewer
    groups than workers), each read as ``skip_rows``/``limit`` of the file."""
    return split_rows(adapter, workers, parquet_group_rows, "a Parquet file")


def merge_parquet(target: Any, paths: list[str]) -> None:
    """Parquet: every row group of every part, one at a time, into one file.

    The parts' row groups are kept as they are: one is read, written and dropped before the
    next, and ``ParquetWriter`` sends each to the output as it is written (a local file, or S3's
    multipart upload, which holds at most one upload part), so memory stays near one row group
    whatever the size of the parts. A part that cannot be read (damaged, or of another schema)
    fails the merge naming it and the row group; nothing is published.
    """
    pq = import_pyarrow("merging Parquet parts")
    import pyarrow as pa

    compression = getattr(target, "compression", None) or "snappy"

    def write(out: IO[bytes]) -> None:
        writer = None
        try:
            for path in paths:
                with merge.open_read(path) as part:
                    group = None
                    try:
                        reader = pq.ParquetFile(part)
                        if writer is None:
                            writer = pq.ParquetWriter(
                                merge.WriteSink(out), reader.schema_arrow, compression=compression
                            )
                        for group in range(reader.num_row_groups):
                            writer.write_table(reader.read_row_group(group))
                    except (pa.ArrowException, ValueError, OSError) as exc:
                        where = "" if group is None else f" (row group {group})"
                        raise ShardingError(
                            f"cannot merge the Parquet part {path}{where} into {target.path}: {exc}. "
                            "Nothing was published and the parts are kept. Parts of different "
                            "schemas: give the pipe a schema_model, so every shard writes the same "
                            "columns and types; a damaged part: run again"
                        ) from exc
        finally:
            if writer is not None:
                writer.close()

    merge.publish(target.path, write)


merge.register_merger("parquet", merge.FormatMerger(merge_parquet, dataset=True))
