"""Ours: a zoopipe-core Pipe, with the Rust core reading the CSV and writing both JSONL files.

The transform is the shared ``transform_row`` applied to each batch of validated rows. The
runner reports this contender as "not installed" while ``zoopipe_core`` (with its native
module) cannot be imported; build it in release mode before benchmarking.
"""

from __future__ import annotations

import functools

from workload import UserRecord, transform_row

from contenders.common import Counts, Job, TimedBody
from zoopipe_core import CSVInputAdapter, JSONOutputAdapter, MultiThreadExecutor, Pipe, SingleThreadExecutor

BATCH_SIZE = 1000


def transform(batch: list[dict]) -> list[dict]:
    return [transform_row(row) for row in batch]


def run(job: Job, executor: str) -> Counts:
    executor_class = MultiThreadExecutor if executor == "multi" else SingleThreadExecutor
    report = Pipe(
        input_adapter=CSVInputAdapter(str(job.input_path)),
        output_adapter=JSONOutputAdapter(str(job.valid_path)),
        error_output_adapter=JSONOutputAdapter(str(job.errors_path)),
        schema_model=UserRecord,
        post_validation=[transform],
        executor=executor_class(batch_size=BATCH_SIZE),
    ).run()
    return report.success_count, report.error_count


def build(job: Job, executor: str = "single") -> TimedBody:
    if executor not in ("single", "multi"):
        raise ValueError(f"unknown executor {executor!r}")
    return functools.partial(run, job, executor)
