"""polars: a streaming scan_csv as text, then the shared row loop over ``iter_rows(named=True)``.

``infer_schema=False`` reads every column as String and ``empty_string_is_null=False`` keeps an
empty cell as "" (not null), so pydantic sees what the other contenders see.
"""

from __future__ import annotations

import functools

import polars as pl

from contenders.common import Counts, Job, TimedBody, open_output, process_rows

CHUNK_ROWS = 50_000


def run(job: Job) -> Counts:
    valid = errors = 0
    batches = pl.scan_csv(job.input_path, infer_schema=False, empty_string_is_null=False).collect_batches(
        chunk_size=CHUNK_ROWS
    )
    with open_output(job.valid_path) as valid_out, open_output(job.errors_path) as errors_out:
        for frame in batches:
            chunk_valid, chunk_errors = process_rows(
                frame.iter_rows(named=True), valid_out, errors_out, first_row_number=valid + errors + 1
            )
            valid += chunk_valid
            errors += chunk_errors
    return valid, errors


def build(job: Job) -> TimedBody:
    return functools.partial(run, job)
