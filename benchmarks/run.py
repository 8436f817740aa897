"""The one-command benchmark: every contender of a scenario, each run in a fresh process.

    python benchmarks/run.py [--rows 1000000] [--repeats 3] [--only name,...] [--scenario etl]

Generates the input once into benchmarks/data/ (reused while its row count and generator version
match), then runs the repeats round-robin across contenders (the machine is noisy, so no
contender gets all its runs in one quiet or busy stretch), checks every run's counts and output
files, prints the table and the targets, and writes benchmarks/results/<date>-<scenario>.json.
Exits non-zero when a contender fails or the counts disagree; a contender whose package is not
importable is listed as "not installed" and does not fail the run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from contenders.common import Job
from machine import machine_info, wait_until_idle
from results import (
    ContenderResult,
    Run,
    check_targets,
    compute_ratios,
    count_disagreements,
    format_floor_note,
    format_table,
    format_targets,
)
from scenarios import SCENARIOS, Contender, Dataset, Scenario

BENCH_DIR = Path(__file__).resolve().parent
DATA_DIR = BENCH_DIR / "data"
RESULTS_DIR = BENCH_DIR / "results"
CHILD = BENCH_DIR / "child.py"
RUN_TIMEOUT_SECONDS = 1800
STDERR_TAIL_CHARS = 3000


def _child_command(scenario: Scenario, contender: Contender, job: Job, result_path: Path) -> list[str]:
    return [
        sys.executable,
        str(CHILD),
        "--scenario", scenario.name,
        "--contender", contender.name,
        "--input", str(job.input_path),
        "--valid-out", str(job.valid_path),
        "--errors-out", str(job.errors_path),
        "--result", str(result_path),
    ]  # fmt: skip


def _run_child(command: list[str], result_path: Path) -> dict:
    """Run one child process; its JSON result, or {"status": "failed", "reason": ...}."""
    try:
        finished = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        return {"status": "failed", "reason": f"no result after {RUN_TIMEOUT_SECONDS} s"}
    if finished.returncode != 0 or not result_path.exists():
        tail = (finished.stderr or finished.stdout)[-STDERR_TAIL_CHARS:].strip()
        return {"status": "failed", "reason": f"exit code {finished.returncode}:\n{tail}"}
    return json.loads(result_path.read_text())


def _job_for(scenario: Scenario, dataset: Dataset, contender: Contender, work_dir: Path) -> Job:
    out_dir = work_dir / contender.name
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = scenario.output_suffix
    return Job(
        input_path=dataset.input_path,
        valid_path=out_dir / f"valid{suffix}",
        errors_path=out_dir / f"errors{suffix}",
    )


def check_installed(scenario: Scenario, dataset: Dataset, result: ContenderResult, work_dir: Path) -> None:
    """Mark the contender "not installed" (with why) when its packages cannot be imported."""
    job = _job_for(scenario, dataset, result.contender, work_dir)
    result_path = work_dir / f"{result.contender.name}.check.json"
    outcome = _run_child(
        [*_child_command(scenario, result.contender, job, result_path), "--check-only"], result_path
    )
    if outcome["status"] != "ok":
        result.status, result.reason = outcome["status"], outcome.get("reason")


def measure_once(
    scenario: Scenario, dataset: Dataset, result: ContenderResult, repeat: int, work_dir: Path
) -> None:
    """One run of one contender: time it, check its counts' files, then delete its outputs."""
    contender = result.contender
    job = _job_for(scenario, dataset, contender, work_dir)
    result_path = work_dir / f"{contender.name}.{repeat}.json"
    wait_until_idle()  # every run starts on a quiet machine, whatever ran before it
    outcome = _run_child(_child_command(scenario, contender, job, result_path), result_path)
    if outcome["status"] != "ok":
        result.status, result.reason = outcome["status"], outcome.get("reason")
        print(f"  repeat {repeat + 1}: {contender.name:<26} {outcome['status'].upper()}", flush=True)
        return
    counts = (outcome["valid"], outcome["errors"])
    if contender.role != "floor":
        problems = scenario.verify_outputs(job, counts)
        if problems:
            result.status, result.reason = "failed", "; ".join(problems)
    shutil.rmtree(job.valid_path.parent, ignore_errors=True)  # hundreds of MB per contender
    run = Run(
        repeat=repeat,
        seconds=outcome["seconds"],
        cpu_seconds=outcome["cpu_seconds"],
        rows_per_s=dataset.rows / outcome["seconds"],
        peak_rss_mib=outcome["peak_rss_mib"],
        valid=outcome["valid"],
        errors=outcome["errors"],
    )
    result.runs.append(run)
    print(
        f"  repeat {repeat + 1}: {contender.name:<26} {run.rows_per_s:>9,.0f} rows/s {run.seconds:>7.2f} s "
        f"(cpu {run.cpu_seconds:>6.2f} s) "
        f"{run.peak_rss_mib:>6.0f} MiB  {run.valid} valid / {run.errors} errors",
        flush=True,
    )


def run_round_robin(
    scenario: Scenario, dataset: Dataset, results: list[ContenderResult], repeats: int
) -> None:
    """Repeat r runs every contender once, starting one further along the list each repeat."""
    with tempfile.TemporaryDirectory(prefix=f"outputs-{scenario.name}-", dir=DATA_DIR) as scratch:
        work_dir = Path(scratch)
        for result in results:
            check_installed(scenario, dataset, result, work_dir)
        runnable = [result for result in results if result.status == "ok"]
        for repeat in range(repeats):
            shift = repeat % len(runnable) if runnable else 0
            for result in runnable[shift:] + runnable[:shift]:
                if result.status == "ok":  # a contender that failed once is not run again
                    measure_once(scenario, dataset, result, repeat, work_dir)


def results_path(scenario: Scenario, rows: int, partial: bool) -> Path:
    """<date>-<scenario>.json for a full default run; a suffix keeps other runs from replacing it."""
    stem = f"{datetime.date.today().isoformat()}-{scenario.name}"
    if rows != scenario.default_rows:
        stem += f"-{rows}rows"
    if partial:
        stem += "-partial"
    return RESULTS_DIR / f"{stem}.json"


def _select(scenario: Scenario, only: str | None) -> list[Contender]:
    if not only:
        return list(scenario.contenders)
    return [scenario.contender(name.strip()) for name in only.split(",") if name.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenario", default="etl", choices=sorted(SCENARIOS))
    parser.add_argument(
        "--rows", type=int, default=None, help="input rows (default: the scenario's, 1,000,000)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", help="comma-separated contender names (default: all)")
    args = parser.parse_args()

    scenario = SCENARIOS[args.scenario]
    rows = args.rows or scenario.default_rows
    try:
        contenders = _select(scenario, args.only)
    except KeyError as exc:
        parser.error(exc.args[0])
    dataset = scenario.prepare_data(rows, DATA_DIR)
    results = [ContenderResult(contender) for contender in contenders]
    print(
        f"{scenario.name}: {scenario.summary}\n{len(contenders)} contenders x {args.repeats} repeats",
        flush=True,
    )
    started = datetime.datetime.now(datetime.timezone.utc)
    run_round_robin(scenario, dataset, results, args.repeats)

    compute_ratios(scenario, results)
    disagreements = count_disagreements(dataset, results)
    checks = check_targets(scenario, results)
    print()
    print(format_table(scenario, dataset, results))
    floor_note = format_floor_note(scenario, results)
    if floor_note:
        print(floor_note)
    if checks:
        print(format_targets(checks))

    distributions = sorted({"pydantic", *(name for c in scenario.contenders for name in c.packages)})
    report = {
        "scenario": scenario.name,
        "summary": scenario.summary,
        "started_utc": started.isoformat(timespec="seconds"),
        "rows": rows,
        "repeats": args.repeats,
        "dataset": dataset.meta,
        "reference": scenario.reference,
        "baseline": scenario.baseline,
        "floor": scenario.floor,
        "machine": machine_info(distributions),
        "contenders": [result.to_json() for result in results],
        "targets": checks,
        "count_disagreements": disagreements,
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = results_path(scenario, rows, partial=bool(args.only))
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results written to {path}")

    failed = [result for result in results if result.status == "failed"]
    for result in failed:
        print(f"\nFAILED {result.contender.name}: {result.reason}", file=sys.stderr)
    if disagreements:
        print(
            "\nCOUNTS DISAGREE (every contender must report the same valid and error counts):",
            file=sys.stderr,
        )
        for problem in disagreements:
            print(f"  {problem}", file=sys.stderr)
    return 1 if failed or disagreements else 0


if __name__ == "__main__":
    sys.exit(main())
