"""A pipe granted one CPU or less by its engine runs on one thread, with the same results.

Engines grant each task CPUs (``task_cpus()``): MultiProcessEngine ``usable CPUs /
max_workers``, Dask one thread's core. A pipe granted at most one CPU reads, runs its stage,
encodes and writes on its own thread instead of a reader, an encoder and a writer thread: the
outputs, counts, error records and failure behaviour must be exactly those of the threaded run.
"""

from __future__ import annotations

import os
import sys
import threading

import pyarrow.parquet as pq
import pytest
from conftest import assert_completed, assert_nothing_published
from pydantic import BaseModel, Field

from zoopipe_core import (
    CSVInputAdapter,
    CSVOutputAdapter,
    JSONOutputAdapter,
    MemoryOutputAdapter,
    ParquetOutputAdapter,
    Pipe,
    PipeStatus,
    PyGeneratorInputAdapter,
    SingleThreadExecutor,
)
from zoopipe_core.engines import MultiProcessEngine, granted_cpus, task_cpus, usable_cpus
from zoopipe_core.errors import PipelineError

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts threads in /proc")


class Row(BaseModel):
    id: int = Field(gt=0)
    name: str


def shout(batch: list[dict]) -> list[dict]:
    return [{**row, "name": row["name"].upper()} for row in batch]


def write_rows(path, rows: int) -> str:
    lines = ["id,name"]
    for i in range(1, rows + 1):
        # Every 7th row is invalid (id 0), every 11th quotes a field holding a newline.
        ident = 0 if i % 7 == 0 else i
        name = f'"line\n{i}"' if i % 11 == 0 else f"n{i}"
        lines.append(f"{ident},{name}")
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def run(csv_path: str, output, errors=None, cpus: float | None = None, batch_size: int = 64):
    pipe = Pipe(
        CSVInputAdapter(csv_path),
        output,
        error_output_adapter=errors,
        schema_model=Row,
        post_validation=[shout],
        executor=SingleThreadExecutor(batch_size=batch_size),
    )
    with granted_cpus(cpus):
        return pipe.run()


@pytest.mark.parametrize("suffix", ["jsonl", "csv", "parquet"])
def test_one_cpu_writes_exactly_what_the_threaded_run_writes(tmp_path, suffix):
    source = write_rows(tmp_path / "in.csv", 2000)
    adapters = {"jsonl": JSONOutputAdapter, "csv": CSVOutputAdapter, "parquet": ParquetOutputAdapter}
    results = {}
    for label, cpus in (("threaded", None), ("one-thread", 1.0)):
        out, errors = tmp_path / f"{label}.{suffix}", tmp_path / f"{label}-errors.jsonl"
        report = run(source, adapters[suffix](str(out)), JSONOutputAdapter(str(errors)), cpus=cpus)
        assert_completed(report, read=2000, written=1715, errors=285)
        body = pq.read_table(out).to_pylist() if suffix == "parquet" else out.read_bytes()
        results[label] = (body, errors.read_bytes())
    assert results["one-thread"] == results["threaded"]


def test_one_cpu_keeps_records_for_a_python_writer_and_samples_errors(tmp_path):
    source = write_rows(tmp_path / "in.csv", 500)
    threaded, single = MemoryOutputAdapter(), MemoryOutputAdapter()
    first = run(source, threaded)
    second = run(source, single, cpus=0.5)
    assert_completed(second, read=500, written=429, errors=71)
    assert single.records == threaded.records and len(single.records) == 429
    assert second.error_samples == first.error_samples


def os_thread_ids() -> set[str]:
    return set(os.listdir("/proc/self/task"))


@linux_only
def test_one_cpu_runs_without_helper_threads(tmp_path):
    source = write_rows(tmp_path / "in.csv", 300)
    added: dict[str, int] = {}  # threads that appeared in this process while each pipe ran

    def count_threads(label, before):
        def transform(batch):
            added[label] = max(added.get(label, 0), len(os_thread_ids() - before))
            return batch

        return transform

    for label, cpus in (("threaded", 2.0), ("one-thread", 1.0)):
        # Counted against the threads alive just before the run: earlier tests of the session
        # leave threads of their own (Ray's, Dask's) that start and end on their own clocks.
        before = os_thread_ids()
        pipe = Pipe(
            CSVInputAdapter(source),
            MemoryOutputAdapter(),
            schema_model=Row,
            post_validation=[count_threads(label, before)],
            executor=SingleThreadExecutor(batch_size=50),
        )
        with granted_cpus(cpus):
            pipe.run()
    # The threaded run adds a reader, an encoder and a writer thread while the stage runs.
    assert added["threaded"] - added["one-thread"] >= 3, added


def test_a_started_pipe_sees_the_cpus_granted_to_its_caller(tmp_path):
    source = write_rows(tmp_path / "in.csv", 10)
    seen = []

    def record(batch):
        seen.append((task_cpus(), threading.current_thread().name))
        return batch

    pipe = Pipe(CSVInputAdapter(source), MemoryOutputAdapter(), post_validation=[record])
    with granted_cpus(1.0):
        pipe.start()
    assert pipe.wait(30)
    assert seen and all(cpus == 1.0 and name == "zoopipe-pipe" for cpus, name in seen)


def test_a_failing_source_on_one_cpu_publishes_nothing(tmp_path):
    def rows():
        for i in range(1, 1000):
            if i == 500:
                raise OSError("the source broke at row 500")
            yield {"id": i, "name": "x"}

    out = tmp_path / "out.jsonl"
    pipe = Pipe(
        PyGeneratorInputAdapter(rows()),
        JSONOutputAdapter(str(out)),
        schema_model=Row,
        post_validation=[shout],
        executor=SingleThreadExecutor(batch_size=100),
    )
    with granted_cpus(1.0), pytest.raises(PipelineError, match="the source broke at row 500"):
        pipe.run()
    assert pipe.report.status == PipeStatus.FAILED
    assert_nothing_published(tmp_path, "out.jsonl")


def test_shutdown_stops_a_one_cpu_run_and_publishes_nothing(tmp_path):
    started = threading.Event()

    def endless():
        i = 0
        while True:
            i += 1
            if i == 1000:
                started.set()
            yield {"id": i, "name": "x"}

    out = tmp_path / "out.jsonl"
    pipe = Pipe(
        PyGeneratorInputAdapter(endless()),
        JSONOutputAdapter(str(out)),
        executor=SingleThreadExecutor(batch_size=100),
    )
    with granted_cpus(1.0):
        pipe.start()
    assert started.wait(30)
    pipe.shutdown(timeout=5)
    assert pipe.report.status == PipeStatus.CANCELLED
    assert_nothing_published(tmp_path, "out.jsonl")


def test_granted_cpus_must_be_positive():
    with pytest.raises(ValueError, match="positive number of CPUs"), granted_cpus(0):
        pass
    assert task_cpus() is None


def read_task_cpus():
    return task_cpus()


def test_multiprocess_engine_grants_its_share_of_the_usable_cpus():
    with MultiProcessEngine(max_workers=2) as engine:
        assert engine.submit(read_task_cpus).result(timeout=60) == usable_cpus() / 2
    with MultiProcessEngine(max_workers=1) as engine:
        assert engine.submit(read_task_cpus).result(timeout=60) == usable_cpus()


def test_a_dask_task_is_granted_one_cpu(dask_cluster):
    from zoopipe_dask import DaskEngine

    with DaskEngine(dask_cluster.scheduler_address) as engine:
        assert engine.submit(read_task_cpus).result(timeout=60) == 1.0


def test_a_ray_task_and_a_ray_pipe_actor_are_granted_their_num_cpus(ray_cluster):
    from zoopipe_ray import RayEngine

    # A lambda travels by value: Ray workers cannot import this test module.
    with RayEngine(num_cpus=1, memory=None, warm_workers=0) as engine:
        assert engine.submit(lambda: task_cpus()).result(timeout=120) == 1.0
        assert engine.submit_dedicated(lambda: task_cpus()).result(timeout=120) == 1.0


def test_multiprocess_engine_runs_one_worker_per_usable_cpu_by_default():
    # A container or taskset narrows the affinity mask below os.cpu_count(): that is the limit.
    assert MultiProcessEngine().max_workers == usable_cpus()
