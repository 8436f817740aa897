"""ZooPipe from PyPI (``zoopipe==2026.2.2``, an unrelated peer) converting with no schema model:
its Pipe with only an input and an output adapter."""

from __future__ import annotations

import functools

from zoopipe import (
    CSVInputAdapter,
    JSONOutputAdapter,
    MultiThreadExecutor,
    ParquetInputAdapter,
    ParquetOutputAdapter,
    Pipe,
    PipeStatus,
    SingleThreadExecutor,
)

from contenders.common import Counts, Job, TimedBody


def run(job: Job, conversion: str, executor: str) -> Counts:
    source = (
        CSVInputAdapter(job.input_path)
        if conversion.startswith("csv-")
        else ParquetInputAdapter(job.input_path)
    )
    if conversion.endswith("-jsonl"):
        target = JSONOutputAdapter(job.valid_path, format="jsonl")
    else:
        target = ParquetOutputAdapter(job.valid_path)
    pipe = Pipe(
        input_adapter=source,
        output_adapter=target,
        executor=MultiThreadExecutor() if executor == "multi" else SingleThreadExecutor(),
    )
    pipe.run(on_report_update=None)
    report = pipe.report
    if report.status is not PipeStatus.COMPLETED:
        raise RuntimeError(f"zoopipe Pipe ended {report.status.value}: {report.exception!r}")
    return report.success_count, report.error_count


def build(job: Job, conversion: str = "csv-jsonl", executor: str = "single") -> TimedBody:
    if conversion not in ("csv-jsonl", "csv-parquet", "parquet-jsonl"):
        raise ValueError(f"unknown conversion {conversion!r}")
    return functools.partial(run, job, conversion, executor)
