"""The conversion scenarios: a file in one format to another, no validation, no Python stage.

``csv-jsonl`` (the users CSV to JSON Lines), ``csv-parquet`` and ``parquet-jsonl``. Every record
is converted (nothing is invalid without a schema), so every contender must report all rows
valid and none in error. The reference to beat is polars (read the file, write the other
format); the baseline is zoopipe 2026.2.2's own conversion. Contenders whose adapters are not
installed (ours for Parquet before zoopipe_core has Parquet adapters) are listed as such.

    python benchmarks/run.py --scenario csv-jsonl
    python benchmarks/run.py --scenario parquet-jsonl --only polars,zoopipe-core
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from contenders.common import Job

from scenarios import etl
from scenarios.base import Contender, Dataset, Scenario, Target
from scenarios.outputs import count_lines, sample_json_lines

PEER = f"zoopipe-{etl.ZOOPIPE_PEER_VERSION}"
COLUMNS = ("user_id", "name", "email", "age", "country", "signup_date", "score")


def _contenders(conversion: str) -> tuple[Contender, ...]:
    ours = (
        "contenders.convert_zoopipe_core"
        if conversion == "csv-jsonl"
        else "contenders.convert_zoopipe_core_parquet"
    )
    pin = {"zoopipe": etl.ZOOPIPE_PEER_VERSION}
    return (
        Contender(
            name="polars",
            module="contenders.convert_polars",
            role="peer",
            summary="read the whole file eagerly (CSV: infer_schema=False), then write it",
            packages=("polars",),
            options={"conversion": conversion},
        ),
        Contender(
            name=PEER,
            module="contenders.convert_zoopipe_pypi",
            role="baseline",
            summary="Pipe(input, output) with no schema_model, SingleThreadExecutor",
            packages=("zoopipe",),
            pins=pin,
            options={"conversion": conversion, "executor": "single"},
        ),
        Contender(
            name=f"{PEER}-mt",
            module="contenders.convert_zoopipe_pypi",
            role="peer",
            summary="as above with MultiThreadExecutor()",
            packages=("zoopipe",),
            pins=pin,
            options={"conversion": conversion, "executor": "multi"},
        ),
        Contender(
            name="zoopipe-core",
            module=ours,
            role="ours",
            summary="ours: Pipe(input, output), no Python stage, SingleThreadExecutor(batch_size=4096)",
            packages=("zoopipe-core",),
            options={"conversion": conversion, "executor": "single"},
        ),
        Contender(
            name="zoopipe-core-mt",
            module=ours,
            role="ours",
            summary="ours: as above with MultiThreadExecutor(max_workers=2, batch_size=4096)",
            packages=("zoopipe-core",),
            options={"conversion": conversion, "executor": "multi"},
        ),
    )


TARGETS = (
    Target(metric="vs_reference", threshold=1.0, label="at least the rows/s of polars"),
    Target(metric="vs_baseline", threshold=5.0, label=f">= 5x rows/s of {PEER}"),
    Target(metric="peak_rss_mib", threshold=200.0, label="peak RSS < 200 MiB"),
)


def _csv_dataset(rows: int, data_dir: Path) -> Dataset:
    users = etl.prepare_data(rows, data_dir)
    return Dataset(
        input_path=users.input_path, rows=rows, expected_valid=rows, expected_errors=0, meta=users.meta
    )


def _parquet_dataset(rows: int, data_dir: Path) -> Dataset:
    """The users CSV as Parquet (every column a string), written once next to it by polars."""
    users = _csv_dataset(rows, data_dir)
    path = users.input_path.with_suffix(".parquet")
    if not path.exists() or path.stat().st_mtime < users.input_path.stat().st_mtime:
        print(f"writing {path} from {users.input_path.name} ...", flush=True)
        temp = path.with_suffix(".parquet.tmp")
        # In a child process: the runner's own peak RSS is inherited by every contender it starts.
        script = "import polars as pl, sys; pl.read_csv(sys.argv[1], infer_schema=False).write_parquet(sys.argv[2], row_group_size=65536)"
        subprocess.run([sys.executable, "-c", script, str(users.input_path), str(temp)], check=True)
        temp.replace(path)
    return Dataset(input_path=path, rows=rows, expected_valid=rows, expected_errors=0, meta=users.meta)


def _verify_jsonl(job: Job, counts: tuple[int, int]) -> list[str]:
    if not job.valid_path.exists():
        return [f"output {job.valid_path} was not written"]
    lines = count_lines(job.valid_path)
    if lines != counts[0]:
        return [f"output has {lines} lines but the contender reported {counts[0]}"]
    for row in sample_json_lines(job.valid_path, head=200):
        if not isinstance(row, dict) or set(row) != set(COLUMNS):
            return [f"output row does not have the input's columns: {row!r:.300}"]
    return []


def _verify_parquet(job: Job, counts: tuple[int, int]) -> list[str]:
    if not job.valid_path.exists():
        return [f"output {job.valid_path} was not written"]
    # In a child process, so the runner's peak RSS (inherited by later contenders) stays small.
    script = (
        "import json, sys, polars as pl; p = sys.argv[1]; "
        "print(json.dumps([pl.scan_parquet(p).select(pl.len()).collect().item(), list(pl.read_parquet_schema(p))]))"
    )
    done = subprocess.run([sys.executable, "-c", script, str(job.valid_path)], capture_output=True, text=True)
    if done.returncode != 0:
        return [f"output {job.valid_path} cannot be read as Parquet: {done.stderr.strip()[-500:]}"]
    rows, names = json.loads(done.stdout)
    if rows != counts[0]:
        return [f"output has {rows} rows but the contender reported {counts[0]}"]
    return [] if set(names) == set(COLUMNS) else [f"output columns {sorted(names)} are not the input's"]


def _scenario(conversion: str, summary: str, prepare, verify, suffix: str) -> Scenario:
    return Scenario(
        name=conversion,
        summary=summary,
        contenders=_contenders(conversion),
        prepare_data=prepare,
        verify_outputs=verify,
        output_suffix=suffix,
        baseline=PEER,
        reference="polars",
        floor=None,
        targets=TARGETS,
    )


SCENARIOS = (
    _scenario(
        "csv-jsonl",
        "users CSV (7 text columns) -> JSON Lines, no schema",
        _csv_dataset,
        _verify_jsonl,
        ".jsonl",
    ),
    _scenario(
        "csv-parquet",
        "users CSV (7 text columns) -> Parquet, no schema",
        _csv_dataset,
        _verify_parquet,
        ".parquet",
    ),
    _scenario(
        "parquet-jsonl",
        "users Parquet (7 string columns) -> JSON Lines, no schema",
        _parquet_dataset,
        _verify_jsonl,
        ".jsonl",
    ),
)
