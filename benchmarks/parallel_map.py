"""Parallel map (issue 17): ours on every engine against the peers, one command, one run.

    python benchmarks/parallel_map.py                          # everything, 3 repeats
    python benchmarks/parallel_map.py --items 20000 --repeats 1  # a smoke run
    python benchmarks/parallel_map.py --only trivial,ray-tasks   # scenarios and/or contenders

Scenarios (``map_contenders/`` holds the contenders):

- ``trivial``: ``--items`` (200,000) items of ``x*x``, results consumed and summed. Ours with
  default settings on the multiprocess, Ray and Dask engines against ``Pool.imap``, mpire and
  joblib (loky) on local processes, plain Ray tasks over batches, ``ray.util.ActorPool``,
  ray-map 1.0.3 (default and best batch size) and Dask ``client.map`` over batches.
- ``sleep``: 2,000 items that sleep 5 ms each, ours on each engine.
- ``faults``: 200 items of which 10 raise and 5 hang for 10 s, ``timeout=1.0,
  safe_exceptions=True``, ours on each engine.
- ``memory``: ``--memory-items`` (1,000,000) items from a generator through ours on multiprocess
  (and ``Pool.imap``; ray-map when named in ``--only``); the driver's RSS growth.
- ``checkpoint``: the trivial run on multiprocess with and without ``checkpoint_path``.

Each run is a fresh process (``--child``); the engine, pool, cluster or Ray is started and
warmed before the clock, so the time is the map and the consumption of its results. Knobs of
the peers (chunk and batch sizes) are swept once per scenario and the fastest setting is the
one repeated. Repeats are round-robin. Every result is checked; a wrong or crashed run is
FAILED and the command exits 1 after printing the tables. Results go to
``results/<date>-parallel-map.json`` (``-partial`` with ``--only`` or a smaller size).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.metadata
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

# The script's own folder is first on sys.path, so its modules import as top-level ones.
from map_contenders import CONTENDERS, SCENARIOS, Contender, work

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
RUN_TIMEOUT_SECONDS = 900
STDERR_TAIL_CHARS = 3000
#: Modules of the benchmark itself: an ImportError from one is a bug, never a missing package.
BENCHMARK_MODULES = frozenset({"map_contenders", "machine"})
DISTRIBUTIONS = ["zoopipe-core", "ray", "ray-map", "mpire", "joblib", "dask", "distributed", "psutil"]
TIMED_NOTE = "timed: the map and the consumption of its results; pool / cluster / Ray start-up excluded"


# --------------------------------------------------------------------------- child


def child_main(scenario: str, name: str, options: dict[str, Any], n: int, result_path: Path) -> None:
    """One run of one contender, in this fresh process; writes its result as JSON."""
    contender = next(c for c in CONTENDERS[scenario] if c.name == name)
    result: dict[str, Any]
    for distribution, wanted in contender.pins.items():
        try:
            installed = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            result_path.write_text(
                json.dumps(
                    {"status": "not installed", "reason": f"{distribution}=={wanted} is not installed"}
                )
            )
            return
        if installed != wanted:
            reason = (
                f"{distribution} {installed} is installed; this contender stands for {distribution}=={wanted}"
            )
            result_path.write_text(json.dumps({"status": "not installed", "reason": reason}))
            return
    module_name, _, function = contender.runner.partition(":")
    runner = getattr(importlib.import_module(f"map_contenders.{module_name}"), function)
    try:
        result = {"status": "ok", **runner(scenario, n, **options)}
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] in BENCHMARK_MODULES:
            raise
        result = {"status": "not installed", "reason": f"{type(exc).__name__}: {exc}"}
    result_path.write_text(json.dumps(result))


# --------------------------------------------------------------------------- parent


def run_child(
    scenario: str, contender: Contender, options: dict[str, Any], n: int, idle_timeout: float
) -> dict:
    """One run in a fresh process: its JSON result, or {"status": "failed", "reason": ...}."""
    from machine import wait_until_idle

    wait_until_idle(timeout=idle_timeout)
    with tempfile.TemporaryDirectory(prefix="zoopipe-map-bench-") as folder:
        result_path = Path(folder) / "result.json"
        command = [
            sys.executable, __file__, "--child", scenario, contender.name,
            "--options", json.dumps(options), "--n", str(n), "--result", str(result_path),
        ]  # fmt: skip
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(BENCH_DIR), os.environ.get("PYTHONPATH")])),
        }
        # Its own session, so a stuck run is stopped with everything it started (Ray, Dask).
        process = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, stderr = process.communicate(timeout=RUN_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            return {"status": "failed", "reason": f"no result after {RUN_TIMEOUT_SECONDS} s"}
        if process.returncode != 0 or not result_path.exists():
            tail = (stderr or stdout)[-STDERR_TAIL_CHARS:].strip()
            return {"status": "failed", "reason": f"exit code {process.returncode}:\n{tail}"}
        return json.loads(result_path.read_text())


def describe(result: dict) -> str:
    if result["status"] != "ok":
        return result["status"].upper()
    return f"{result['seconds']:.2f} s, {result['items'] / result['seconds']:,.0f} items/s, RSS +{result['rss_growth_mib']:.0f} MiB"


def options_label(options: dict[str, Any]) -> str:
    shown = {k: v for k, v in options.items() if k != "engine"}
    if shown.pop("checkpoint", False):
        shown["checkpoint_path"] = "<fresh>"
    return ", ".join(f"{k}={v}" for k, v in shown.items())


class Entry:
    """A contender's runs in one scenario and what they add up to."""

    def __init__(self, contender: Contender) -> None:
        self.contender = contender
        self.options = dict(contender.options)
        self.sweep: list[dict] = []
        self.runs: list[dict] = []
        self.status = "ok"
        self.reason = ""

    def record(self, result: dict) -> None:
        if result["status"] != "ok" and self.status != "failed":
            self.status, self.reason = result["status"], result.get("reason", "")

    @property
    def measured(self) -> bool:
        return self.status == "ok" and bool(self.runs)

    def median(self, key: str = "seconds") -> float:
        return statistics.median(r[key] for r in self.runs)

    def items_per_s(self) -> float:
        return self.runs[0]["items"] / self.median()

    def to_json(self) -> dict:
        summary = {}
        if self.measured:
            summary = {
                "median_seconds": self.median(),
                "min_seconds": min(r["seconds"] for r in self.runs),
                "max_seconds": max(r["seconds"] for r in self.runs),
                "items_per_s": self.items_per_s(),
                "max_rss_growth_mib": max(r["rss_growth_mib"] for r in self.runs),
            }
        return {
            "name": self.contender.name,
            "role": self.contender.role,
            "group": self.contender.group,
            "options": self.options,
            "status": self.status,
            "reason": self.reason,
            "sweep": self.sweep,
            "runs": self.runs,
            **summary,
        }


def items_for(contender: Contender, n: int) -> int:
    return min(n, contender.max_items) if contender.max_items else n


def run_scenario(scenario: str, entries: list[Entry], n: int, repeats: int, idle_timeout: float) -> None:
    """The sweeps (once each), then the repeats round-robin."""
    for entry in entries:
        for options in entry.contender.sweep:
            merged = {**entry.contender.options, **options}
            result = run_child(scenario, entry.contender, merged, items_for(entry.contender, n), idle_timeout)
            entry.sweep.append({"options": merged, **result})
            print(f"  sweep {entry.contender.name} ({options_label(merged)}): {describe(result)}", flush=True)
            if result["status"] == "failed":
                entry.record(result)
        if entry.contender.sweep:
            good = [s for s in entry.sweep if s["status"] == "ok"]
            if good:
                entry.options = min(good, key=lambda s: s["seconds"])["options"]
            else:
                entry.record(entry.sweep[-1])
    for repeat in range(repeats):
        order = entries[repeat % len(entries) :] + entries[: repeat % len(entries)]
        for entry in order:
            if entry.status != "ok":
                continue  # not installed, or failed: once is enough
            result = run_child(
                scenario, entry.contender, entry.options, items_for(entry.contender, n), idle_timeout
            )
            label = options_label(entry.options)
            print(
                f"  {entry.contender.name}{f' ({label})' if label else ''} #{repeat + 1}: {describe(result)}",
                flush=True,
            )
            entry.record(result)
            if result["status"] == "ok":
                entry.runs.append(result)


def references(
    scenario: str, by_name: dict[str, Entry], n: int, cores: int
) -> dict[str, tuple[str, float | None]]:
    """For each group, the reference's name and items/s: the best local peer, plain Ray tasks,
    Dask client.map; the ideal for sleep and faults."""

    def speed(name: str) -> float | None:
        entry = by_name.get(name)
        return entry.items_per_s() if entry is not None and entry.measured else None

    if scenario == "trivial":
        local = [(name, speed(name)) for name in ("pool-imap", "mpire", "joblib-loky")]
        measured = [(name, s) for name, s in local if s is not None]
        best_local = (
            max(measured, key=lambda pair: pair[1])
            if measured
            else ("fastest of pool-imap/mpire/joblib", None)
        )
        return {
            "local": best_local,
            "ray": ("ray-tasks", speed("ray-tasks")),
            "dask": ("dask-client-map", speed("dask-client-map")),
        }
    if scenario in ("sleep", "faults"):
        ideal = n / ideal_seconds(scenario, cores)
        return {group: ("ideal", ideal) for group in ("local", "ray", "dask")}
    if scenario == "memory":
        return {group: ("pool-imap", speed("pool-imap")) for group in ("local", "ray")}
    return {"local": ("ours-multiprocess", speed("ours-multiprocess"))}


def ideal_seconds(scenario: str, cores: int) -> float:
    if scenario == "sleep":
        return 2000 * work.SLEEP_S / cores
    hangs = len(work.FAULT_HANG)
    return ((work.FAULT_ITEMS - hangs) * work.FAULT_ITEM_S + hangs * work.FAULT_TIMEOUT_S) / cores


def format_table(
    scenario: str, n: int, entries: list[Entry], refs: dict[str, tuple[str, float | None]]
) -> str:
    lines = [
        f"{'contender':<30}{'setting':<30}{'median s':>9}{'min-max s':>14}{'items/s':>11}{'RSS +MiB':>9}  items/s vs reference",
    ]
    for entry in entries:
        name = entry.contender.name
        setting = options_label(entry.options) or "default"
        if not entry.measured:
            why = entry.reason.strip().splitlines()[-1] if entry.reason.strip() else ""
            lines.append(f"{name:<30}{setting:<30}{entry.status.upper()}: {why}")
            continue
        low, high = min(r["seconds"] for r in entry.runs), max(r["seconds"] for r in entry.runs)
        ref_name, ref_speed = refs.get(entry.contender.group, ("", None))
        ratio = f"{entry.items_per_s() / ref_speed:.2f}x {ref_name}" if ref_speed else ""
        growth = max(r["rss_growth_mib"] for r in entry.runs)
        if entry.runs[0]["items"] != n:
            setting += f" ({entry.runs[0]['items']:,} items)"
        lines.append(
            f"{name:<30}{setting:<30}{entry.median():>9.2f}{f'{low:.2f}-{high:.2f}':>14}"
            f"{entry.items_per_s():>11,.0f}{growth:>9.0f}  {ratio}"
        )
    return "\n".join(lines)


def check_targets(scenario: str, by_name: dict[str, Entry], refs: dict, cores: int) -> list[dict]:
    """The targets of issue 17 for this scenario; value None when a side was not measured."""
    checks: list[dict] = []

    def speed_ratio(ours: str, ref: tuple[str, float | None]) -> float | None:
        entry = by_name.get(ours)
        if entry is None or not entry.measured or ref[1] is None:
            return None
        return entry.items_per_s() / ref[1]

    def add(label: str, value: float | None, met: bool | None, shown: str = "") -> None:
        checks.append({"scenario": scenario, "target": label, "value": value, "met": met, "shown": shown})

    if scenario == "trivial":
        for ours, group in (("ours-multiprocess", "local"), ("ours-ray", "ray"), ("ours-dask", "dask")):
            if ours not in by_name:
                continue
            ratio = speed_ratio(ours, refs[group])
            add(
                f"{ours} >= 0.8x {refs[group][0]}",
                ratio,
                None if ratio is None else ratio >= 0.8,
                f"{ratio:.2f}x" if ratio else "",
            )
        if "ours-ray" in by_name:
            for peer in ("ray-map-default", "ray-map-best"):
                other = by_name.get(peer)
                ref = (peer, other.items_per_s() if other is not None and other.measured else None)
                ratio = speed_ratio("ours-ray", ref)
                # Information, not a target of its own: the issue expects more than 10x.
                checks.append(
                    {
                        "scenario": scenario,
                        "target": f"ours-ray / {peer}",
                        "value": ratio,
                        "met": "info",
                        "shown": f"{ratio:.1f}x" if ratio else "",
                    }
                )
    elif scenario in ("sleep", "faults"):
        ideal = ideal_seconds(scenario, cores)
        limit, how = (
            (ideal * 1.10, "within 10% of") if scenario == "sleep" else (ideal + 1.0, "within 1 s of")
        )
        for entry in by_name.values():
            if entry.contender.role != "ours":
                continue
            value = entry.median() if entry.measured else None
            add(
                f"{entry.contender.name} {how} ideal {ideal:.2f} s (<= {limit:.2f} s)",
                value,
                None if value is None else value <= limit,
                f"{value:.2f} s" if value is not None else "",
            )
    elif scenario == "memory":
        streamed = by_name.get("ours-multiprocess")
        if streamed is not None:
            value = max(r["rss_growth_mib"] for r in streamed.runs) if streamed.measured else None
            add(
                "ours-multiprocess driver RSS growth <= 50 MiB (worst repeat)",
                value,
                None if value is None else value <= 50,
                f"{value:.1f} MiB" if value is not None else "",
            )
    elif scenario == "checkpoint":
        plain, journaled = by_name.get("ours-multiprocess"), by_name.get("ours-multiprocess-checkpoint")
        value = None
        if plain is not None and journaled is not None and plain.measured and journaled.measured:
            value = journaled.median() / plain.median()
        add(
            "ours-multiprocess with checkpoint_path <= 1.10x the time without",
            value,
            None if value is None else value <= 1.10,
            f"{value:.2f}x" if value is not None else "",
        )
    return checks


def format_targets(checks: list[dict]) -> str:
    lines = []
    for check in checks:
        verdict = {True: "PASS", False: "MISSED", None: "NOT MEASURED", "info": "info"}[check["met"]]
        lines.append(f"  {verdict:<13}{check['target']:<66}{check['shown']:>10}")
    return "\n".join(lines)


def select(only: str | None) -> dict[str, list[Contender]]:
    """The scenarios and contenders --only names (scenario names, contender names or both)."""
    names = {name.strip() for name in (only or "").split(",") if name.strip()}
    known = set(SCENARIOS) | {c.name for cs in CONTENDERS.values() for c in cs}
    unknown = names - known
    if unknown:
        raise SystemExit(
            f"--only: unknown {', '.join(sorted(unknown))}; choose from {', '.join(sorted(known))}"
        )
    scenarios = [s for s in SCENARIOS if s in names] or SCENARIOS
    contender_names = names - set(SCENARIOS)
    chosen = {}
    for scenario in scenarios:
        if contender_names:
            picked = [c for c in CONTENDERS[scenario] if c.name in contender_names]
        else:
            picked = [c for c in CONTENDERS[scenario] if not c.optional]
        if picked:
            chosen[scenario] = picked
    return chosen


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per contender, round-robin")
    parser.add_argument("--only", help="comma-separated scenario and/or contender names")
    parser.add_argument(
        "--items", type=int, default=200_000, help="items of the trivial and checkpoint scenarios"
    )
    parser.add_argument("--memory-items", type=int, default=1_000_000, help="items of the memory scenario")
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=30.0,
        help="most seconds to wait for a quiet machine before a run",
    )
    parser.add_argument("--child", nargs=2, metavar=("SCENARIO", "CONTENDER"), help=argparse.SUPPRESS)
    parser.add_argument("--options", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args.child[0], args.child[1], json.loads(args.options), args.n, args.result)
        return 0

    from machine import machine_info

    chosen = select(args.only)
    machine = machine_info(DISTRIBUTIONS)
    cores = machine["usable_cores"] or 1
    sizes = {
        "trivial": args.items,
        "checkpoint": args.items,
        "memory": args.memory_items,
        "sleep": 2000,
        "faults": work.FAULT_ITEMS,
    }
    print(f"{machine['cpu_model']}, {cores} usable cores; {TIMED_NOTE}", flush=True)
    started = datetime.datetime.now(datetime.timezone.utc)
    report: dict[str, Any] = {
        "started_utc": started.isoformat(timespec="seconds"),
        "repeats": args.repeats,
        "timed": TIMED_NOTE,
        "machine": machine,
        "scenarios": {},
    }
    all_checks: list[dict] = []
    failed: list[Entry] = []
    for scenario, contenders in chosen.items():
        n = sizes[scenario]
        print(
            f"\n== {scenario}: {n:,} items, {len(contenders)} contenders x {args.repeats} repeats", flush=True
        )
        entries = [Entry(c) for c in contenders]
        run_scenario(scenario, entries, n, args.repeats, args.idle_timeout)
        by_name = {e.contender.name: e for e in entries}
        refs = references(scenario, by_name, n, cores)
        checks = check_targets(scenario, by_name, refs, cores)
        all_checks += checks
        failed += [e for e in entries if e.status == "failed"]
        print(f"\n{scenario} ({n:,} items; {TIMED_NOTE})")
        print(format_table(scenario, n, entries, refs))
        if checks:
            print(format_targets(checks))
        report["scenarios"][scenario] = {
            "items": n,
            "references": {group: {"name": name, "seconds": s} for group, (name, s) in refs.items()},
            "contenders": [e.to_json() for e in entries],
            "targets": checks,
        }

    print("\ntargets:")
    print(format_targets(all_checks))
    partial = bool(args.only) or args.items != 200_000 or args.memory_items != 1_000_000 or args.repeats < 3
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = (
        RESULTS_DIR / f"{datetime.date.today().isoformat()}-parallel-map{'-partial' if partial else ''}.json"
    )
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"results written to {path}")
    for entry in failed:
        print(f"\nFAILED {entry.contender.name}: {entry.reason}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
