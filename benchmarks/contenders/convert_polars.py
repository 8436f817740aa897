"""polars converting eagerly, as its users do: read the whole file, then write it (all columns
as text for CSV input, like the other contenders)."""

from __future__ import annotations

import functools

import polars as pl

from contenders.common import Counts, Job, TimedBody


def run(job: Job, conversion: str) -> Counts:
    if conversion.startswith("csv-"):
        frame = pl.read_csv(job.input_path, infer_schema=False)
    else:
        frame = pl.read_parquet(job.input_path)
    if conversion.endswith("-jsonl"):
        frame.write_ndjson(job.valid_path)
    else:
        frame.write_parquet(job.valid_path)
    return frame.height, 0


def build(job: Job, conversion: str = "csv-jsonl") -> TimedBody:
    if conversion not in ("csv-jsonl", "csv-parquet", "parquet-jsonl"):
        raise ValueError(f"unknown conversion {conversion!r}")
    return functools.partial(run, job, conversion)
