"""Plain Python: csv.DictReader, pydantic, json, one row at a time, streaming."""

from __future__ import annotations

import csv
import functools

from contenders.common import Counts, Job, TimedBody, open_output, process_rows


def run(job: Job) -> Counts:
    with (
        job.input_path.open(newline="", encoding="utf-8") as source,
        open_output(job.valid_path) as valid_out,
        open_output(job.errors_path) as errors_out,
    ):
        return process_rows(csv.DictReader(source), valid_out, errors_out)


def build(job: Job) -> TimedBody:
    return functools.partial(run, job)
