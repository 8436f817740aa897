"""Parquet outputs of parallel runs on local files: with should_merge=False a directory dataset
(``out.parquet/part-NNNNN.parquet`` and ``_SUCCESS``) that pyarrow, Dask, polars, DuckDB and Ray
Data read as one; a rerun with fewer workers leaves no stale part; the merge keeps the parts' row
groups and holds about one of them in memory. The same on S3: tests/plugins/zoopipe_s3/
test_s3_parquet_outputs.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from zoopipe_core import (
    JSONInputAdapter,
    ParquetInputAdapter,
    ParquetOutputAdapter,
    Pipe,
    PipelineError,
    PipeManager,
    ShardingError,
)
from zoopipe_core.adapters.dataset import SUCCESS, finish_dataset
from zoopipe_core.adapters.storage import PendingOutput
from zoopipe_core.engines import MultiProcessEngine
from zoopipe_core.parallel.shards import plan_shards

ROWS = 3000


def write_input(path: Path, rows: int = ROWS, group: int = 500) -> str:
    """A Parquet file of ``rows`` rows (id, name) in row groups of ``group`` rows."""
    table = pa.table({"id": list(range(rows)), "name": [f"user{i}" for i in range(rows)]})
    pq.write_table(table, path, row_group_size=group)
    return str(path)


def run_parallel(source: str, out: str, workers: int, should_merge: bool = False) -> PipeManager:
    pipe = Pipe(ParquetInputAdapter(source), ParquetOutputAdapter(out))
    manager = PipeManager.parallelize_pipe(
        pipe, workers=workers, should_merge=should_merge, engine=MultiProcessEngine(max_workers=2)
    )
    manager.run(show_progress=False)
    return manager


def ids(values) -> list[int]:
    return sorted(int(v) for v in values)


def test_unmerged_parts_are_one_dataset_for_every_reader(tmp_path: Path) -> None:
    source = write_input(tmp_path / "in.parquet")
    out = tmp_path / "out.parquet"
    report = run_parallel(source, str(out), workers=3).report
    assert report.success_count == ROWS
    assert sorted(os.listdir(out)) == [
        SUCCESS,
        "part-00000.parquet",
        "part-00001.parquet",
        "part-00002.parquet",
    ]
    expected = list(range(ROWS))

    assert ids(ds.dataset(str(out), format="parquet").to_table()["id"].to_pylist()) == expected
    assert ids(pq.read_table(out)["id"].to_pylist()) == expected

    import dask.dataframe as dd

    assert ids(dd.read_parquet(str(out))["id"].compute().tolist()) == expected

    import polars as pl

    assert ids(pl.read_parquet(str(out))["id"].to_list()) == expected

    import duckdb

    rows = duckdb.sql(f"select id from read_parquet('{out}/*.parquet')").fetchall()
    assert ids(r[0] for r in rows) == expected


def test_ray_data_reads_the_directory_as_one_dataset(tmp_path: Path, ray_cluster) -> None:
    import ray.data

    source = write_input(tmp_path / "in.parquet")
    out = tmp_path / "out.parquet"
    run_parallel(source, str(out), workers=3)
    rows = ray.data.read_parquet(str(out)).take_all()
    assert ids(r["id"] for r in rows) == list(range(ROWS))


def test_a_rerun_with_fewer_workers_leaves_no_stale_part(tmp_path: Path) -> None:
    source = write_input(tmp_path / "in.parquet")
    out = tmp_path / "out.parquet"
    run_parallel(source, str(out), workers=4)
    assert len([n for n in os.listdir(out) if n.startswith("part-")]) == 4
    run_parallel(source, str(out), workers=2)
    assert sorted(os.listdir(out)) == [SUCCESS, "part-00000.parquet", "part-00001.parquet"]
    assert ids(ds.dataset(str(out)).to_table()["id"].to_pylist()) == list(range(ROWS))


def test_a_failed_rerun_leaves_the_directory_unmarked(tmp_path: Path) -> None:
    """_SUCCESS goes when a run starts and comes back only when every shard succeeded."""
    good = write_input(tmp_path / "a.parquet", rows=10, group=10)
    out = tmp_path / "out.parquet"
    pipe = Pipe(ParquetInputAdapter([good, good]), ParquetOutputAdapter(str(out)))
    PipeManager.parallelize_pipe(pipe, workers=2, engine=MultiProcessEngine(max_workers=2)).run(
        show_progress=False
    )
    assert (out / SUCCESS).exists()
    (tmp_path / "b.parquet").write_bytes(b"PAR1 not really")
    broken = Pipe(ParquetInputAdapter([good, str(tmp_path / "b.parquet")]), ParquetOutputAdapter(str(out)))
    manager = PipeManager.parallelize_pipe(broken, workers=2, engine=MultiProcessEngine(max_workers=2))
    with pytest.raises(PipelineError, match=r"1 of \d pipes failed"):
        manager.run(show_progress=False)
    assert not (out / SUCCESS).exists()
    assert not [n for n in os.listdir(out) if n.startswith(".")]  # no temporary file left


def test_a_file_where_the_directory_goes_is_refused_and_the_other_way_round(tmp_path: Path) -> None:
    source = write_input(tmp_path / "in.parquet", rows=10, group=5)
    file_out = tmp_path / "file.parquet"
    file_out.write_bytes(b"an earlier merged output")
    pipe = Pipe(ParquetInputAdapter(source), ParquetOutputAdapter(str(file_out)))
    with pytest.raises(ShardingError, match=r"file\.parquet is a file.*directory of parts.*Remove the file"):
        PipeManager.parallelize_pipe(pipe, workers=2, should_merge=False)
    dir_out = tmp_path / "dir.parquet"
    dir_out.mkdir()
    pipe = Pipe(ParquetInputAdapter(source), ParquetOutputAdapter(str(dir_out)))
    with pytest.raises(ShardingError, match=r"dir\.parquet is a directory.*Remove the directory"):
        PipeManager.parallelize_pipe(pipe, workers=2, should_merge=True)


MERGE_AND_REPORT_PEAK = (
    "import json, sys, pyarrow as pa\n"
    "from zoopipe_core import ParquetOutputAdapter\n"
    "from zoopipe_core.adapters import merge\n"
    "target = ParquetOutputAdapter(sys.argv[1], compression='none')\n"
    "merge.merge_outputs(target, [target.shard(i) for i in range(int(sys.argv[2]))])\n"
    "print(json.dumps(pa.default_memory_pool().max_memory()))\n"
)


def merge_in_a_fresh_process(folder: Path, parts: int, group_rows: int) -> tuple[str, int]:
    """Merge ``parts`` parts of 3 row groups each in a new process; its output path and the peak
    of its pyarrow memory pool."""
    folder.mkdir()
    target = ParquetOutputAdapter(str(folder / "all.parquet"), compression="none")
    for index in range(parts):
        first = index * 3 * group_rows
        table = pa.table({"a": range(first, first + 3 * group_rows), "b": range(3 * group_rows)})
        pq.write_table(table, target.shard(index).path, row_group_size=group_rows, compression="none")
    done = subprocess.run(
        [sys.executable, "-c", MERGE_AND_REPORT_PEAK, target.path, str(parts)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert not [p for p in os.listdir(folder) if ".part-" in p]
    return target.path, json.loads(done.stdout)


def test_a_merge_keeps_the_row_groups_and_holds_about_one_in_memory(tmp_path: Path) -> None:
    """Row groups of 0.8 MB (decoded): merging 12 parts (29 MB) takes no more memory than merging
    2: one row group at a time, with the writer's encoding buffers (about 2 MB for a row group
    read, up to 10 MB for Parquet's dictionary encoder, which is bounded by its page size limit)."""
    group_rows = 50_000
    _, small_peak = merge_in_a_fresh_process(tmp_path / "two", 2, group_rows)
    path, peak = merge_in_a_fresh_process(tmp_path / "twelve", 12, group_rows)
    merged = pq.ParquetFile(path)
    assert merged.metadata.num_row_groups == 36
    assert ids(pq.read_table(path)["a"].to_pylist()) == list(range(36 * group_rows))
    whole_file = 36 * 2 * 8 * group_rows
    assert peak <= small_peak * 1.2 + (1 << 20), (peak, small_peak)
    assert peak < whole_file / 2, (peak, whole_file)


def test_a_memory_url_dataset_hides_its_temporary_parts_and_reads_as_one(memfs) -> None:
    """memory:// lives in one process, so its shards run here, one after the other, as the
    manager would run them; the parts are written under hidden temporary names."""
    import fsspec

    url = "memory://mem-dataset/out.parquet"
    pending = PendingOutput(f"{url}/part-00000.parquet")
    assert pending.temp_path is not None
    assert pending.temp_path.startswith("/mem-dataset/out.parquet/.part-00000.parquet.zoopipe-")
    fs = fsspec.filesystem("memory")
    fs.pipe("/mem-dataset/out.parquet/part-00007.parquet", b"an earlier run's part")
    inputs = []
    for n in range(2):
        inputs.append(f"memory://mem-dataset/in{n}.jsonl")
        fs.pipe(
            inputs[-1].removeprefix("memory://"), b"".join(b'{"id": %d}\n' % (n * 5 + i) for i in range(5))
        )
    target = ParquetOutputAdapter(url)
    plan = plan_shards(Pipe(JSONInputAdapter(inputs), target), workers=2, should_merge=False)
    assert [p.output_adapter.path for p in plan.pipes] == [f"{url}/part-0000{i}.parquet" for i in range(2)]
    for shard in plan.pipes:
        shard.run()
    finish_dataset(target, plan.datasets[0][1])
    fs = fsspec.filesystem("memory")
    assert sorted(fs.ls("/mem-dataset/out.parquet", detail=False)) == [
        "/mem-dataset/out.parquet/_SUCCESS",
        "/mem-dataset/out.parquet/part-00000.parquet",
        "/mem-dataset/out.parquet/part-00001.parquet",
    ]
    table = ds.dataset("/mem-dataset/out.parquet", format="parquet", filesystem=fs).to_table()
    assert ids(table["id"].to_pylist()) == list(range(10))
