"""Ours, converting with no Python stage: the whole pipe runs in Rust (reader, encoders, writer).

Conversions: ``csv-jsonl`` here; ``csv-parquet`` and ``parquet-jsonl`` in
``convert_zoopipe_core_parquet`` (reported "not installed" while zoopipe_core has no Parquet
adapters).
"""

from __future__ import annotations

import functools

from contenders.common import Counts, Job, TimedBody
from zoopipe_core import CSVInputAdapter, JSONOutputAdapter, MultiThreadExecutor, Pipe, SingleThreadExecutor

BATCH_SIZE = 4096


def executor_for(name: str):
    if name == "single":
        return SingleThreadExecutor(batch_size=BATCH_SIZE)
    if name == "multi":
        return MultiThreadExecutor(max_workers=2, batch_size=BATCH_SIZE)
    raise ValueError(f"unknown executor {name!r}: use single or multi")


def run_pipe(input_adapter, output_adapter, executor: str) -> Counts:
    report = Pipe(input_adapter, output_adapter, executor=executor_for(executor)).run()
    return report.success_count, report.error_count


def build(job: Job, conversion: str = "csv-jsonl", executor: str = "single") -> TimedBody:
    if conversion != "csv-jsonl":
        raise ValueError(f"conversion {conversion!r} is in convert_zoopipe_core_parquet")
    return functools.partial(
        run_pipe, CSVInputAdapter(str(job.input_path)), JSONOutputAdapter(str(job.valid_path)), executor
    )
