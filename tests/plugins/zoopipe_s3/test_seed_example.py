"""Seed 000's first example as written (with our import names) against moto's S3 server: one CSV
object parallelised over ``workers`` from 1 to 10 on the multiprocess, Ray and Dask engines, to one
JSON Lines object merged on the store.

Every record arrives exactly once and in order, the merged object is valid JSON Lines, no part
object or multipart upload is left, and the driver read only small windows around the cuts (the
CSV holds quoted newlines, delimiters and doubled quotes, so many cuts land inside quoted fields).
A Parquet object with fewer row groups than workers and an Arrow IPC file go the same way.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from s3_server import S3Server, s3_keys, s3_pending_uploads, worker_environment

from zoopipe_core import (
    ArrowInputAdapter,
    CSVInputAdapter,
    JSONOutputAdapter,
    ParquetInputAdapter,
    Pipe,
    PipeManager,
)
from zoopipe_core.adapters.ranged import DRIVER_READS
from zoopipe_core.engines import MultiProcessEngine, WorkerEnvironment

ROWS = 3000
#: Bytes the driver may read per cut (the window around it) and for the header, at most.
WINDOW_BUDGET = 8 << 10


def rows() -> list[dict[str, str]]:
    """Records whose text fields hold newlines, commas and quotes every few rows."""
    out = []
    for i in range(ROWS):
        note = f"plain note {i}"
        if i % 3 == 0:
            note = f'line one of {i}\nline two, with "quotes"\nline three'
        elif i % 7 == 0:
            note = f"comma, separated, {i}"
        out.append({"id": str(i), "name": f"user-{i}", "note": note})
    return out


def csv_bytes(records: list[dict[str, str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["id", "name", "note"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return buffer.getvalue().encode()


@pytest.fixture(params=["multiprocess", "ray", "dask"])
def engine(request: pytest.FixtureRequest, s3_server: S3Server) -> Iterator[Any]:
    if request.param == "multiprocess":
        engine: Any = MultiProcessEngine(max_workers=2)
    elif request.param == "ray":
        request.getfixturevalue("ray_cluster")
        from zoopipe_ray import RayEngine

        engine = RayEngine()
    else:
        cluster = request.getfixturevalue("dask_cluster")
        from zoopipe_dask import DaskEngine

        engine = DaskEngine(cluster.scheduler_address)
    engine.start()
    engine.prepare(WorkerEnvironment(env_vars=worker_environment(s3_server)))
    try:
        yield engine
    finally:
        engine.shutdown()


@pytest.mark.parametrize("workers", range(1, 11))
def test_seed_example_on_s3(engine: Any, workers: int, s3_server: S3Server, s3_bucket: str) -> None:
    records = rows()
    fs = s3_server.filesystem()
    fs.pipe(f"{s3_bucket}/data.csv", csv_bytes(records))
    before = DRIVER_READS.bytes

    pipe = Pipe(
        input_adapter=CSVInputAdapter(f"s3://{s3_bucket}/data.csv"),
        output_adapter=JSONOutputAdapter(f"s3://{s3_bucket}/output.jsonl"),
    )
    manager = PipeManager.parallelize_pipe(pipe, workers=workers, engine=engine, should_merge=True)
    manager.start()
    manager.wait()

    report = manager.report
    assert not report.has_error, manager.failure_error(report)
    assert (report.total_processed, report.success_count, report.error_count) == (ROWS, ROWS, 0)
    assert manager.pipe_count == workers  # every cut decided from its window, none dropped
    merged = fs.cat_file(f"{s3_bucket}/output.jsonl").decode()
    assert [json.loads(line) for line in merged.splitlines()] == records
    assert s3_keys(s3_server, s3_bucket) == ["data.csv", "output.jsonl"]
    assert s3_pending_uploads(s3_server, s3_bucket) == []
    cuts = manager.pipe_count - 1
    assert DRIVER_READS.bytes - before <= WINDOW_BUDGET * (cuts + 1)


@pytest.mark.parametrize("kind", ["parquet", "arrow"])
def test_a_table_object_on_s3_in_shards_on_every_engine(
    engine: Any, kind: str, s3_server: S3Server, s3_bucket: str
) -> None:
    """Parquet with fewer row groups than workers (rows cut within groups), and an Arrow IPC
    file split by batches: each worker fetches its own ranges; merged on the store."""
    import pyarrow as pa
    import pyarrow.ipc as ipc
    import pyarrow.parquet as pq

    table = pa.table({"id": range(500), "name": [f"user-{i}" for i in range(500)]})
    buffer = io.BytesIO()
    if kind == "parquet":
        pq.write_table(table, buffer, row_group_size=250)
        source: Any = ParquetInputAdapter(f"s3://{s3_bucket}/data.parquet")
    else:
        with ipc.new_file(buffer, table.schema) as writer:
            for batch in table.to_batches(max_chunksize=100):
                writer.write_batch(batch)
        source = ArrowInputAdapter(f"s3://{s3_bucket}/data.arrow")
    fs = s3_server.filesystem()
    fs.pipe(f"{s3_bucket}/{source.path.rsplit('/', 1)[1]}", buffer.getvalue())

    pipe = Pipe(input_adapter=source, output_adapter=JSONOutputAdapter(f"s3://{s3_bucket}/output.jsonl"))
    manager = PipeManager.parallelize_pipe(pipe, workers=4, engine=engine, should_merge=True)
    manager.start()
    manager.wait()

    assert not manager.report.has_error, manager.failure_error(manager.report)
    assert manager.pipe_count == 4
    merged = fs.cat_file(f"{s3_bucket}/output.jsonl").decode()
    assert [json.loads(line) for line in merged.splitlines()] == table.to_pylist()
    assert s3_keys(s3_server, s3_bucket) == sorted([source.path.rsplit("/", 1)[1], "output.jsonl"])
