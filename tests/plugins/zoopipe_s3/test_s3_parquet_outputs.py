"""Parquet outputs of parallel runs on S3 (moto's server, tests/s3_server.py).

should_merge=True: one worker of the run's engine (multiprocess, Ray, Dask) merges the parts row
group by row group; the driver sends no request that reads a part (``s3_calls`` records only the
driver's: each worker process has its own copy). A damaged part or parts of different schemas
fail the merge: nothing published, the parts kept. Stopping the run during the merge cancels it.
should_merge=False: a directory dataset ``out.parquet/part-NNNNN.parquet`` + ``_SUCCESS``."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from s3_server import s3_keys, s3_pending_uploads, worker_environment

from zoopipe_core import (
    ArrowOutputAdapter,
    JSONInputAdapter,
    ParquetInputAdapter,
    ParquetOutputAdapter,
    Pipe,
    PipelineError,
    PipeManager,
    PipeStatus,
    ShardingError,
)
from zoopipe_core.adapters import merge
from zoopipe_core.adapters.parquet import merge_parquet
from zoopipe_core.engines import Engine, MultiProcessEngine, WorkerEnvironment
from zoopipe_core.parallel.merging import run_merge

ROWS = 3000
#: S3 requests that would carry part or output bytes through the driver.
DATA_CALLS = {"get_object", "put_object", "upload_part", "upload_part_copy", "complete_multipart_upload"}


def write_input(path: Path, rows: int = ROWS, group: int = 250) -> str:
    table = pa.table({"id": list(range(rows)), "name": [f"user{i}" for i in range(rows)]})
    pq.write_table(table, path, row_group_size=group)
    return str(path)


def make_engine(kind: str, s3_server: Any, request: pytest.FixtureRequest) -> Engine:
    """An engine of ``kind`` whose workers reach the test S3 server (clusters started before it
    get its address through their environment)."""
    if kind == "multiprocess":
        return MultiProcessEngine(max_workers=2)
    if kind == "ray":
        from zoopipe_ray import RayEngine

        request.getfixturevalue("ray_cluster")
        engine: Engine = RayEngine()
    else:
        from zoopipe_dask import DaskEngine

        engine = DaskEngine(request.getfixturevalue("dask_cluster").scheduler_address)
    engine.prepare(WorkerEnvironment(env_vars=worker_environment(s3_server)))
    return engine


def read_ids(s3_server: Any, url: str) -> list[int]:
    fs = s3_server.filesystem()
    table = ds.dataset(url.removeprefix("s3://"), format="parquet", filesystem=fs).to_table()
    return sorted(table["id"].to_pylist())


@pytest.mark.parametrize(
    "kind",
    [
        "multiprocess",
        pytest.param("ray", marks=pytest.mark.ray),
        pytest.param("dask", marks=pytest.mark.dask),
    ],
)
def test_a_parquet_output_on_s3_is_merged_by_a_worker(
    s3_server, s3_bucket, tmp_path, s3_calls, request, kind
):
    source = write_input(tmp_path / "in.parquet")
    url = f"s3://{s3_bucket}/out/all.parquet"
    engine = make_engine(kind, s3_server, request)
    try:
        pipe = Pipe(ParquetInputAdapter(source), ParquetOutputAdapter(url, row_group_size=200))
        manager = PipeManager.parallelize_pipe(pipe, workers=3, should_merge=True, engine=engine)
        s3_calls.clear()
        report = manager.run(show_progress=False)
        driver = [method for method, _, _ in s3_calls]
    finally:
        engine.shutdown()
    assert report.success_count == ROWS and report.merge_error is None
    assert s3_keys(s3_server, s3_bucket) == ["out/all.parquet"]
    assert s3_pending_uploads(s3_server, s3_bucket) == []
    merged = pq.ParquetFile(s3_server.filesystem().open(url.removeprefix("s3://")))
    assert merged.metadata.num_rows == ROWS and merged.metadata.num_row_groups >= 3
    assert read_ids(s3_server, url) == list(range(ROWS))
    assert not DATA_CALLS & set(driver), driver


def write_parts(s3_server: Any, target: ParquetOutputAdapter, bodies: list[bytes]) -> list[Any]:
    fs = s3_server.filesystem()
    parts = [target.shard(i) for i in range(len(bodies))]
    for part, body in zip(parts, bodies, strict=True):
        fs.pipe(part.path.removeprefix("s3://"), body)
    return parts


def parquet_bytes(first: int, rows: int) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"id": list(range(first, first + rows))}), sink, row_group_size=10)
    return sink.getvalue().to_pybytes()


def test_a_damaged_part_fails_the_merge_on_the_worker_and_publishes_nothing(s3_server, s3_bucket):
    target = ParquetOutputAdapter(f"s3://{s3_bucket}/all.parquet")
    good = parquet_bytes(0, 30)
    parts = write_parts(s3_server, target, [good, good[: len(good) // 2] + b"PAR1", parquet_bytes(30, 5)])
    damaged = r"cannot merge the Parquet part s3://.*all\.part-00001\.parquet"
    with MultiProcessEngine(max_workers=1) as engine, pytest.raises(ShardingError, match=damaged):
        run_merge(engine, target, parts, engine.submit, lambda: False)
    assert s3_keys(s3_server, s3_bucket) == [f"all.part-0000{i}.parquet" for i in range(3)]
    assert s3_pending_uploads(s3_server, s3_bucket) == []


def test_parts_of_different_schemas_are_the_runs_merge_error(s3_server, s3_bucket, tmp_path):
    """Two input files whose column has another type in each: the shards write parts of two
    schemas, the worker's merge fails naming the part and row group, the run reports it."""
    (tmp_path / "a.jsonl").write_text('{"v": 1}\n{"v": 2}\n')
    (tmp_path / "b.jsonl").write_text('{"v": "x"}\n')
    url = f"s3://{s3_bucket}/all.parquet"
    pipe = Pipe(
        JSONInputAdapter([str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")]), ParquetOutputAdapter(url)
    )
    manager = PipeManager.parallelize_pipe(
        pipe, workers=2, should_merge=True, engine=MultiProcessEngine(max_workers=2)
    )
    with pytest.raises(
        PipelineError, match=r"merging the shards failed: cannot merge the Parquet part"
    ) as failed:
        manager.run(show_progress=False)
    assert "(row group 0)" in str(failed.value) and "schema_model" in str(failed.value)
    assert isinstance(manager.report.merge_error, ShardingError)
    assert manager.report.status == PipeStatus.FAILED
    parts = [f"all.part-0000{i}.parquet" for i in range(manager.pipe_count)]
    assert s3_keys(s3_server, s3_bucket) == parts  # kept, as for every failed merge
    assert s3_pending_uploads(s3_server, s3_bucket) == []


def slow_merge(target: Any, paths: list[str]) -> None:
    """The Parquet merge, announcing its start (a file named by the environment) and then
    taking its time, so the run can be stopped in the middle."""
    import os

    Path(os.environ["ZOOPIPE_TEST_MERGE_STARTED"]).write_text("started")
    for _ in range(600):
        time.sleep(0.05)
    merge_parquet(target, paths)


@pytest.mark.parametrize("owned", [False, True], ids=["passed-engine", "managers-engine"])
def test_stopping_the_run_during_the_merge_cancels_it(s3_server, s3_bucket, tmp_path, monkeypatch, owned):
    """A passed engine: the manager cancels the merge task and the engine stays up. An engine the
    manager made: its shutdown cancels the task. Either way nothing is published."""
    started = tmp_path / "merge-started"
    monkeypatch.setenv("ZOOPIPE_TEST_MERGE_STARTED", str(started))
    # The engine forks each task from here, so its workers merge with slow_merge.
    monkeypatch.setitem(merge._MERGERS, "parquet", merge.FormatMerger(slow_merge, dataset=True))
    source = write_input(tmp_path / "in.parquet", rows=100, group=50)
    url = f"s3://{s3_bucket}/all.parquet"
    engine = MultiProcessEngine(max_workers=2)
    try:
        pipe = Pipe(ParquetInputAdapter(source), ParquetOutputAdapter(url))
        manager = PipeManager.parallelize_pipe(
            pipe, workers=2, should_merge=True, engine="multiprocess" if owned else engine
        )
        manager.start()
        deadline = time.monotonic() + 60
        while not started.exists():
            assert time.monotonic() < deadline, "the merge never started"
            time.sleep(0.05)
        assert manager.is_running
        stopping = threading.Thread(target=manager.shutdown, kwargs={"timeout": 2.0})
        stopping.start()
        stopping.join(60)
        assert not stopping.is_alive() and not manager.is_running
        assert manager.engine.is_running != owned  # a passed engine stays up
    finally:
        engine.shutdown()
    report = manager.report
    assert report.status == PipeStatus.CANCELLED and report.merge_error is None
    assert all(r.status == PipeStatus.COMPLETED for r in manager.pipe_reports)
    assert s3_keys(s3_server, s3_bucket) == []  # nothing published, the parts removed
    assert s3_pending_uploads(s3_server, s3_bucket) == []


def test_unmerged_parquet_on_s3_is_one_dataset_and_a_rerun_leaves_no_stale_part(
    s3_server, s3_bucket, tmp_path, s3_calls
):
    source = write_input(tmp_path / "in.parquet")
    url = f"s3://{s3_bucket}/out.parquet"

    def run(workers: int) -> None:
        pipe = Pipe(ParquetInputAdapter(source), ParquetOutputAdapter(url))
        manager = PipeManager.parallelize_pipe(
            pipe, workers=workers, engine=MultiProcessEngine(max_workers=2)
        )
        assert manager.run(show_progress=False).success_count == ROWS

    run(4)
    assert s3_keys(s3_server, s3_bucket) == ["out.parquet/_SUCCESS"] + [
        f"out.parquet/part-0000{i}.parquet" for i in range(4)
    ]
    s3_calls.clear()
    run(2)
    driver = [method for method, _, _ in s3_calls]
    assert s3_keys(s3_server, s3_bucket) == [
        "out.parquet/_SUCCESS",
        "out.parquet/part-00000.parquet",
        "out.parquet/part-00001.parquet",
    ]
    assert read_ids(s3_server, url) == list(range(ROWS))
    assert "get_object" not in driver and "upload_part" not in driver, driver
    assert {"delete_object", "delete_objects"} & set(driver), driver  # the stale parts, by the driver


def test_an_arrow_output_on_s3_is_merged_by_a_worker_too(s3_server, s3_bucket, tmp_path, s3_calls):
    """Arrow IPC streams batch by batch through the same S3 upload (pyarrow needs a complete file
    object: merge.WriteSink gives it one)."""
    import pyarrow.ipc as ipc

    source = write_input(tmp_path / "in.parquet")
    url = f"s3://{s3_bucket}/all.arrow"
    pipe = Pipe(ParquetInputAdapter(source), ArrowOutputAdapter(url))
    manager = PipeManager.parallelize_pipe(
        pipe, workers=3, should_merge=True, engine=MultiProcessEngine(max_workers=2)
    )
    s3_calls.clear()
    assert manager.run(show_progress=False).success_count == ROWS
    driver = [method for method, _, _ in s3_calls]
    assert not DATA_CALLS & set(driver), driver
    assert s3_keys(s3_server, s3_bucket) == ["all.arrow"]
    with s3_server.filesystem().open(url.removeprefix("s3://")) as file:
        table = ipc.open_file(file).read_all()
    assert sorted(table["id"].to_pylist()) == list(range(ROWS))
