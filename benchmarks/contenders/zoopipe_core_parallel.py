"""Ours, in parallel: the ETL pipe of ``zoopipe_core_pipe`` split into shards by
``PipeManager.parallelize_pipe`` and run on an engine (local processes, Ray or Dask), outputs
merged into one JSONL file each.

The engine is started in ``build`` (not timed): the timed work is splitting, running the shards
and merging. Engine start-up is measured separately by ``engine_overhead.py``.
"""

from __future__ import annotations

import functools

from workload import UserRecord

from contenders.common import Counts, Job, TimedBody
from contenders.zoopipe_core_pipe import BATCH_SIZE, transform
from zoopipe_core import CSVInputAdapter, JSONOutputAdapter, Pipe, PipeManager, SingleThreadExecutor
from zoopipe_core.plugins import resolve_engine


def run(job: Job, engine, workers: int) -> Counts:
    pipe = Pipe(
        input_adapter=CSVInputAdapter(str(job.input_path)),
        output_adapter=JSONOutputAdapter(str(job.valid_path)),
        error_output_adapter=JSONOutputAdapter(str(job.errors_path)),
        schema_model=UserRecord,
        post_validation=[transform],
        executor=SingleThreadExecutor(batch_size=BATCH_SIZE),
    )
    manager = PipeManager.parallelize_pipe(pipe, workers=workers, should_merge=True, engine=engine)
    manager.start()
    manager.wait()
    report = manager.report
    if report.has_error:
        raise RuntimeError(f"parallel run failed: {report!r}")
    return report.success_count, report.error_count


def build(job: Job, engine: str = "multiprocess", workers: str = "2") -> TimedBody:
    options = {"multiprocess": {"max_workers": int(workers)}, "ray": {"num_cpus": 1}, "dask": {}}
    engine_class = type(resolve_engine(engine))
    instance = engine_class(**options[engine])
    instance.start()
    return functools.partial(run, job, instance, int(workers))
