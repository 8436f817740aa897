"""The etl scenario: users CSV -> pydantic model -> per-row Python transform -> JSONL plus an errors file."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import datagen
from contenders.common import Job
from workload import UserRecord, transform_row

from scenarios.base import Contender, Dataset, Scenario, Target
from scenarios.outputs import count_lines, sample_json_lines

ZOOPIPE_PEER_VERSION = "2026.2.2"

CONTENDERS = (
    Contender(
        name="floor",
        module="contenders.floor",
        role="floor",
        summary="validate + model_dump + transform_row on rows parsed before timing; no I/O",
        packages=("pydantic",),
    ),
    Contender(
        name="baseline",
        module="contenders.baseline",
        role="baseline",
        summary="csv.DictReader + model_validate + model_dump + transform_row + json.dumps, streaming",
        packages=("pydantic",),
    ),
    Contender(
        name="pandas",
        module="contenders.pandas_rowwise",
        role="peer",
        summary="read_csv(dtype=str, chunksize=50k) + itertuples + the baseline's row loop",
        packages=("pandas",),
    ),
    Contender(
        name="polars",
        module="contenders.polars_rowwise",
        role="peer",
        summary="scan_csv(infer_schema=False).collect_batches(50k) + iter_rows(named=True) + the baseline's row loop",
        packages=("polars",),
    ),
    Contender(
        name=f"zoopipe-{ZOOPIPE_PEER_VERSION}",
        module="contenders.zoopipe_pypi",
        role="peer",
        summary="Pipe(schema_model=...) + transform as post-validation hook, SingleThreadExecutor",
        packages=("zoopipe",),
        pins={"zoopipe": ZOOPIPE_PEER_VERSION},
        options={"executor": "single", "validation": "schema_model"},
    ),
    Contender(
        name=f"zoopipe-{ZOOPIPE_PEER_VERSION}-mt",
        module="contenders.zoopipe_pypi",
        role="peer",
        summary="as above with MultiThreadExecutor()",
        packages=("zoopipe",),
        pins={"zoopipe": ZOOPIPE_PEER_VERSION},
        options={"executor": "multi", "validation": "schema_model"},
    ),
    Contender(
        name=f"zoopipe-{ZOOPIPE_PEER_VERSION}-hookval",
        module="contenders.zoopipe_pypi",
        role="peer",
        summary="Pipe without schema_model; validate + transform inside the hook (its fastest correct use)",
        packages=("zoopipe",),
        pins={"zoopipe": ZOOPIPE_PEER_VERSION},
        options={"executor": "single", "validation": "hook"},
    ),
    Contender(
        name="zoopipe-core",
        module="contenders.zoopipe_core_pipe",
        role="ours",
        summary="ours: Pipe(schema_model=..., post_validation=[transform]), SingleThreadExecutor(batch_size=1000)",
        packages=("zoopipe-core",),
        options={"executor": "single"},
    ),
    Contender(
        name="zoopipe-core-mt",
        module="contenders.zoopipe_core_pipe",
        role="ours",
        summary="ours: as above with MultiThreadExecutor(batch_size=1000)",
        packages=("zoopipe-core",),
        options={"executor": "multi"},
    ),
)

TARGETS = (
    Target(metric="vs_reference", threshold=2.0, label=f">= 2x rows/s of zoopipe {ZOOPIPE_PEER_VERSION}"),
    Target(metric="vs_baseline", threshold=1.5, label=">= 1.5x rows/s of the plain Python baseline"),
    Target(metric="peak_rss_mib", threshold=200.0, label="peak RSS < 200 MiB"),
)

_SAMPLE_RECORD = UserRecord(
    user_id=1, name="A B", email="a@b.io", age=1, country="us", signup_date=date(2020, 1, 1), score=1.0
).model_dump()
OUTPUT_KEYS = frozenset(transform_row(_SAMPLE_RECORD))


def prepare_data(rows: int, data_dir: Path) -> Dataset:
    """Reuse ``users-<rows>.csv`` when its meta matches this generator; generate it otherwise."""
    input_path = data_dir / f"users-{rows}.csv"
    meta = datagen.load_meta_if_current(input_path, rows)
    if meta is None:
        print(f"generating {input_path} ({rows:,} rows) ...", flush=True)
        meta = datagen.generate(rows, input_path)
    return Dataset(
        input_path=input_path,
        rows=rows,
        expected_valid=meta["expected_valid"],
        expected_errors=meta["expected_errors"],
        meta=meta,
    )


def _problems_with_valid_row(row: object) -> str | None:
    if not isinstance(row, dict) or set(row) != OUTPUT_KEYS:
        return f"valid row does not have the transform's keys: {row!r:.300}"
    if not (
        isinstance(row["user_id"], int) and isinstance(row["age"], int) and isinstance(row["score"], float)
    ):
        return f"valid row was not coerced by the model (numbers kept as text?): {row!r:.300}"
    if row["email_sha256"] != hashlib.sha256(row["email"].encode()).hexdigest():
        return f"valid row has a wrong email hash: {row!r:.300}"
    return None


def verify_outputs(job: Job, counts: tuple[int, int]) -> list[str]:
    """Line counts must equal the reported counts; sampled valid rows must be transformed records."""
    problems = []
    for label, path, reported in (
        ("valid", job.valid_path, counts[0]),
        ("errors", job.errors_path, counts[1]),
    ):
        if not path.exists():
            problems.append(f"{label} output {path} was not written")
            continue
        lines = count_lines(path)
        if lines != reported:
            problems.append(f"{label} output has {lines} lines but the contender reported {reported}")
    if problems:
        return problems
    for row in sample_json_lines(job.valid_path):
        problem = _problems_with_valid_row(row)
        if problem:
            return [problem]
    if not all(isinstance(row, dict) for row in sample_json_lines(job.errors_path)):
        problems.append("errors output holds lines that are not JSON objects")
    return problems


SCENARIO = Scenario(
    name="etl",
    summary="users CSV (7 columns, ~1% bad rows) -> pydantic + per-row transform -> JSONL + errors JSONL",
    contenders=CONTENDERS,
    prepare_data=prepare_data,
    verify_outputs=verify_outputs,
    output_suffix=".jsonl",
    baseline="baseline",
    reference=f"zoopipe-{ZOOPIPE_PEER_VERSION}",
    floor="floor",
    targets=TARGETS,
)
