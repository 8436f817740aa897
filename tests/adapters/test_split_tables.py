"""Splitting Parquet and Arrow IPC inputs: one Arrow file or stream cut by record batches (rows
within batches when there are fewer batches than workers), and lists of Parquet or Arrow files,
one shard per file. Every row is read exactly once, in order, with its row number in its file.
pyarrow writes the inputs."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, model_validator

from tests.conftest import read_jsonl
from zoopipe_core import (
    ArrowInputAdapter,
    JSONOutputAdapter,
    MemoryOutputAdapter,
    ParquetInputAdapter,
    Pipe,
    PipelineError,
    PipeManager,
    ShardingError,
)
from zoopipe_core.engines import MultiProcessEngine

BATCH_SIZES = [3, 1, 4, 1, 5, 9, 2]  # 7 uneven record batches, 25 rows
ROWS = sum(BATCH_SIZES)
WRITERS = {"file": ipc.new_file, "stream": ipc.new_stream}


def rows(first: int, count: int) -> list[dict]:
    return [{"id": i, "name": f"u{i}"} for i in range(first, first + count)]


def write_arrow(path: Path, batch_sizes: list[int], format: str, first: int = 0) -> list[dict]:
    """An Arrow IPC file or stream holding one record batch per size; returns its rows."""
    schema = pa.schema([("id", pa.int64()), ("name", pa.string())])
    written: list[dict] = []
    with WRITERS[format](str(path), schema) as writer:
        for size in batch_sizes:
            batch = rows(first + len(written), size)
            writer.write_batch(pa.RecordBatch.from_pylist(batch, schema=schema))
            written += batch
    return written


def write_parquet(path: Path, count: int, first: int, row_group_size: int) -> list[dict]:
    written = rows(first, count)
    pq.write_table(pa.Table.from_pylist(written), str(path), row_group_size=row_group_size)
    return written


def read_shards(shards: list) -> list[dict]:
    """Every shard run by a pipe of its own, in order."""
    records: list[dict] = []
    for shard in shards:
        out = MemoryOutputAdapter()
        Pipe(shard, out).run()
        records += out.records
    return records


class RejectMultiplesOfSeven(BaseModel):
    """Fails the rows whose id is a multiple of 7, so the error output shows their row numbers."""

    model_config = ConfigDict(extra="allow")

    @model_validator(mode="before")
    @classmethod
    def reject(cls, data: dict) -> dict:
        if data["id"] % 7 == 0:
            raise ValueError("rejected on purpose")
        return data


def errors_by_row(shards: list) -> list[tuple[int, int]]:
    """``(row number, id)`` of each rejected row, over every shard in order."""
    found = []
    for shard in shards:
        errors = MemoryOutputAdapter()
        Pipe(
            shard, MemoryOutputAdapter(), error_output_adapter=errors, schema_model=RejectMultiplesOfSeven
        ).run()
        found += [(e["line"], e["record"]["id"]) for e in errors.records]
    return found


# --------------------------------------------------------------------------- one Arrow file


@pytest.mark.parametrize("format", ["file", "stream"])
@pytest.mark.parametrize("workers", [1, 2, 3, 5, 7, 8, 30])
def test_an_arrow_input_splits_into_shards_holding_every_row_once(
    tmp_path: Path, format: str, workers: int
) -> None:
    path = tmp_path / f"data.{'arrow' if format == 'file' else 'arrows'}"
    expected = write_arrow(path, BATCH_SIZES, format)
    shards = ArrowInputAdapter(path, columns=["id", "name"]).split(workers)
    assert len(shards) == min(workers, ROWS)
    assert all(shard.limit > 0 and shard.columns == ["id", "name"] for shard in shards)
    assert read_shards(shards) == expected
    if workers <= len(BATCH_SIZES):  # whole record batches
        batch_starts = {sum(BATCH_SIZES[:i]) for i in range(len(BATCH_SIZES))}
        assert {shard.skip_rows for shard in shards} <= batch_starts
    assert errors_by_row(shards) == [(i + 1, i) for i in range(0, ROWS, 7)], (
        "rows keep their numbers in the file"
    )


def test_whole_batches_are_balanced_by_rows(tmp_path: Path) -> None:
    write_arrow(tmp_path / "a.arrow", [10, 10, 10, 10, 1, 1], "file")
    shards = ArrowInputAdapter(tmp_path / "a.arrow").split(2)
    assert [(s.skip_rows, s.limit) for s in shards] == [(0, 20), (20, 22)]


@pytest.mark.parametrize("format", ["file", "stream"])
def test_an_arrow_input_runs_in_parallel_and_merges(tmp_path: Path, format: str) -> None:
    path, out, errors = tmp_path / "data.arrow", tmp_path / "out.jsonl", tmp_path / "errors.jsonl"
    expected = write_arrow(path, BATCH_SIZES * 4, format)  # 28 batches, 100 rows
    pipe = Pipe(
        ArrowInputAdapter(path),
        JSONOutputAdapter(out),
        error_output_adapter=JSONOutputAdapter(errors),
        schema_model=RejectMultiplesOfSeven,
    )
    manager = PipeManager.parallelize_pipe(
        pipe, workers=3, should_merge=True, engine=MultiProcessEngine(max_workers=2)
    )
    assert manager.pipe_count == 3
    report = manager.run(show_progress=False)
    rejected = [r for r in expected if r["id"] % 7 == 0]
    assert (report.success_count, report.error_count) == (len(expected) - len(rejected), len(rejected))
    assert read_jsonl(out) == [r for r in expected if r["id"] % 7]
    assert [(e["line"], e["record"]["id"]) for e in read_jsonl(errors)] == [
        (r["id"] + 1, r["id"]) for r in rejected
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.arrow", "errors.jsonl", "out.jsonl"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batch_sizes=st.lists(st.integers(0, 6), max_size=8),
    workers=st.integers(1, 32),
    format=st.sampled_from(["file", "stream"]),
)
def test_arrow_shards_hold_every_row_once_in_order(
    tmp_path: Path, batch_sizes: list[int], workers: int, format: str
) -> None:
    path = tmp_path / "data.arrow"
    expected = write_arrow(path, batch_sizes, format)
    shards = ArrowInputAdapter(path).split(workers)
    assert 1 <= len(shards) <= max(1, min(workers, len(expected)))
    assert read_shards(shards) == expected
    assert errors_by_row(shards) == [(r["id"] + 1, r["id"]) for r in expected if r["id"] % 7 == 0]


def test_an_arrow_input_with_no_rows_is_one_empty_shard(tmp_path: Path) -> None:
    for format in ("file", "stream"):
        write_arrow(tmp_path / "empty.arrow", [], format)
        shards = ArrowInputAdapter(tmp_path / "empty.arrow").split(4)
        assert [(s.skip_rows, s.limit) for s in shards] == [(0, 0)]
        assert read_shards(shards) == []


def test_an_arrow_input_that_cannot_be_read_is_not_split(tmp_path: Path) -> None:
    (tmp_path / "blank.arrow").write_bytes(b"")
    with pytest.raises(ShardingError, match=r"cannot split .*blank.arrow.*an Arrow IPC file or stream"):
        ArrowInputAdapter(tmp_path / "blank.arrow").split(2)
    with pytest.raises(ShardingError, match=r"cannot split .*missing.arrow.*exists"):
        ArrowInputAdapter(tmp_path / "missing.arrow").split(2)


def test_an_arrow_file_on_an_fsspec_url_splits(memfs, tmp_path: Path) -> None:
    expected = write_arrow(tmp_path / "local.arrow", BATCH_SIZES, "file")
    memfs.pipe("/data.arrow", (tmp_path / "local.arrow").read_bytes())
    shards = ArrowInputAdapter("memory://data.arrow").split(3)
    assert len(shards) == 3 and read_shards(shards) == expected


def test_an_arrow_stream_on_an_fsspec_url_is_not_split_but_is_one_shard_of_a_list(
    memfs, tmp_path: Path
) -> None:
    """A stream has no index of its batches: splitting one on a URL would read it whole."""
    expected = write_arrow(tmp_path / "local.arrows", BATCH_SIZES, "stream")
    memfs.pipe("/tables/a.arrows", (tmp_path / "local.arrows").read_bytes())
    with pytest.raises(ShardingError, match=r"a.arrows is an Arrow IPC stream on a URL.*format='file'"):
        ArrowInputAdapter("memory://tables/a.arrows").split(3)
    # In a prefix, the stream (the larger file) is one shard; the small file is another.
    other = write_arrow(tmp_path / "other.arrow", [1], "file", first=ROWS)
    memfs.pipe("/tables/b.arrow", (tmp_path / "other.arrow").read_bytes())
    shards = ArrowInputAdapter("memory://tables/").split(4)
    assert [shard.path for shard in shards] == ["memory:///tables/a.arrows", "memory:///tables/b.arrow"]
    assert read_shards(shards) == expected + other


@pytest.mark.parametrize("options", [{"skip_rows": 1}, {"limit": 5}, {"limit": 0}])
def test_skip_rows_and_limit_cannot_be_sharded(tmp_path: Path, options: dict) -> None:
    write_arrow(tmp_path / "a.arrow", BATCH_SIZES, "file")
    write_arrow(tmp_path / "b.arrows", BATCH_SIZES, "stream")
    write_parquet(tmp_path / "c.parquet", 10, 0, 4)
    for adapter in (
        ArrowInputAdapter(tmp_path / "a.arrow", **options),
        ArrowInputAdapter(tmp_path / "b.arrows", **options),
        ArrowInputAdapter([tmp_path / "a.arrow", tmp_path / "b.arrows"], **options),
        ParquetInputAdapter([tmp_path / "c.parquet", tmp_path / "c.parquet"], **options),
    ):
        with pytest.raises(ShardingError, match=r"skip_rows or limit.*Drop them to parallelize"):
            adapter.split(2)


# --------------------------------------------------------------------------- lists of files


def test_a_list_of_parquet_files_runs_one_shard_per_file(tmp_path: Path) -> None:
    files = [tmp_path / f"part{i}.parquet" for i in range(3)]
    expected = (
        write_parquet(files[0], 10, 0, 4)
        + write_parquet(files[1], 0, 10, 4)
        + write_parquet(files[2], 7, 10, 2)
    )
    out = tmp_path / "out.jsonl"
    manager = PipeManager.parallelize_pipe(
        Pipe(ParquetInputAdapter(files), JSONOutputAdapter(out)),
        workers=2,
        should_merge=True,
        engine=MultiProcessEngine(max_workers=2),
    )
    assert [p.input_adapter.paths for p in manager.pipes] == [[str(f)] for f in files]
    assert manager.run(show_progress=False).success_count == len(expected)
    assert read_jsonl(out) == expected


def test_a_list_of_arrow_files_and_streams_runs_one_shard_per_file(tmp_path: Path) -> None:
    files = [tmp_path / "a.arrow", tmp_path / "b.arrows", tmp_path / "c.arrow"]
    expected = write_arrow(files[0], [2, 3], "file")
    expected += write_arrow(files[1], [4, 0, 1], "stream", first=len(expected))
    expected += write_arrow(files[2], [6], "file", first=len(expected))
    out, errors = tmp_path / "out.jsonl", tmp_path / "errors.jsonl"
    pipe = Pipe(
        ArrowInputAdapter(files, columns=["id"]),
        JSONOutputAdapter(out),
        error_output_adapter=JSONOutputAdapter(errors),
        schema_model=RejectMultiplesOfSeven,
    )
    manager = PipeManager.parallelize_pipe(
        pipe, workers=2, should_merge=True, engine=MultiProcessEngine(max_workers=2)
    )
    assert manager.pipe_count == 3
    manager.run(show_progress=False)
    assert read_jsonl(out) == [{"id": r["id"]} for r in expected if r["id"] % 7]
    # Ids 0, 7 and 14 are row 1 of a.arrow (ids 0-4), 3 of b.arrows (5-9) and 5 of c.arrow (10-15).
    assert [(e["source"], e["line"]) for e in read_jsonl(errors)] == [
        (str(files[0]), 1),
        (str(files[1]), 3),
        (str(files[2]), 5),
    ]


@pytest.mark.parametrize(
    "adapter_type, suffix", [(ParquetInputAdapter, "parquet"), (ArrowInputAdapter, "arrow")]
)
def test_a_single_pipe_refuses_a_list_of_files(tmp_path: Path, adapter_type, suffix: str) -> None:
    files = [tmp_path / f"a.{suffix}", tmp_path / f"b.{suffix}"]
    for file in files:
        if suffix == "parquet":
            write_parquet(file, 2, 0, 4)
        else:
            write_arrow(file, [2], "file")
    pipe = Pipe(adapter_type(files), JSONOutputAdapter(tmp_path / "out.jsonl"))
    with pytest.raises(
        PipelineError, match=f"{adapter_type.__name__} got 2 files; one pipe reads one file.*parallelize_pipe"
    ):
        pipe.run()
    assert not (tmp_path / "out.jsonl").exists()
    assert Pipe(adapter_type([files[0]]), MemoryOutputAdapter()).run().success_count == 2


@pytest.mark.parametrize("adapter_type", [ParquetInputAdapter, ArrowInputAdapter])
def test_an_empty_list_of_files_is_refused(adapter_type) -> None:
    with pytest.raises(ValueError, match=f"{adapter_type.__name__} got an empty list of paths"):
        adapter_type([])


def test_a_list_of_table_files_names_its_files(tmp_path: Path) -> None:
    files = [str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")]
    assert repr(ParquetInputAdapter(files)) == f"ParquetInputAdapter({files!r})"
    assert repr(ArrowInputAdapter(files[:1])) == f"ArrowInputAdapter({files[0]!r})"
    shards = ArrowInputAdapter(tuple(files), columns=["id"]).split(1)
    assert [(s.path, s.paths, s.columns, repr(s)) for s in shards] == [
        (f, [f], ["id"], f"ArrowInputAdapter({f!r})") for f in files
    ]


def test_arrow_batch_rows_are_read_from_the_footer_and_headers_of_any_binary_file(tmp_path: Path) -> None:
    """The native batch counter reads a RangedFile or, as here, any seekable binary file object."""
    import io

    from zoopipe_core import _native

    write_arrow(tmp_path / "t.arrow", BATCH_SIZES, "file")
    assert _native.ipc_file_batch_rows(io.BytesIO((tmp_path / "t.arrow").read_bytes())) == BATCH_SIZES
    with pytest.raises(ValueError, match="truncated"):
        _native.ipc_file_batch_rows(io.BytesIO((tmp_path / "t.arrow").read_bytes()[:-4]))
