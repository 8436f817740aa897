"""Ours, converting to or from Parquet with no Python stage. Importing this module fails (the
runner says "not installed") until zoopipe_core has ParquetInputAdapter and ParquetOutputAdapter."""

from __future__ import annotations

import functools

from contenders.common import Job, TimedBody
from contenders.convert_zoopipe_core import run_pipe
from zoopipe_core import CSVInputAdapter, JSONOutputAdapter, ParquetInputAdapter, ParquetOutputAdapter


def build(job: Job, conversion: str, executor: str = "single") -> TimedBody:
    if conversion == "csv-parquet":
        adapters = CSVInputAdapter(str(job.input_path)), ParquetOutputAdapter(str(job.valid_path))
    elif conversion == "parquet-jsonl":
        adapters = ParquetInputAdapter(str(job.input_path)), JSONOutputAdapter(str(job.valid_path))
    else:
        raise ValueError(f"unknown conversion {conversion!r}")
    return functools.partial(run_pipe, *adapters, executor)
