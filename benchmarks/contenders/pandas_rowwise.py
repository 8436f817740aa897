"""pandas: read_csv in chunks as text, then the shared row loop over ``itertuples``.

``dtype=str`` with ``keep_default_na=False`` keeps every cell the exact text of the file (an
empty cell stays "" instead of NaN), so pydantic sees what the other contenders see.
"""

from __future__ import annotations

import functools

import pandas as pd

from contenders.common import Counts, Job, TimedBody, open_output, process_rows

CHUNK_ROWS = 50_000


def run(job: Job) -> Counts:
    valid = errors = 0
    chunks = pd.read_csv(job.input_path, dtype=str, keep_default_na=False, chunksize=CHUNK_ROWS)
    with open_output(job.valid_path) as valid_out, open_output(job.errors_path) as errors_out:
        for chunk in chunks:
            columns = list(chunk.columns)
            rows = (
                dict(zip(columns, values, strict=True)) for values in chunk.itertuples(index=False, name=None)
            )
            chunk_valid, chunk_errors = process_rows(
                rows, valid_out, errors_out, first_row_number=valid + errors + 1
            )
            valid += chunk_valid
            errors += chunk_errors
    return valid, errors


def build(job: Job) -> TimedBody:
    return functools.partial(run, job)
