"""Turning measured runs into per-contender summaries, ratios, the printed table and target checks."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from scenarios import Contender, Dataset, Scenario, Target


@dataclass
class Run:
    """One timed run of one contender in its own process."""

    repeat: int
    seconds: float
    cpu_seconds: float
    rows_per_s: float
    peak_rss_mib: float
    valid: int
    errors: int


@dataclass
class ContenderResult:
    """Everything measured for one contender; ``status`` is "ok", "not installed" or "failed"."""

    contender: Contender
    status: str = "ok"
    reason: str | None = None
    runs: list[Run] = field(default_factory=list)
    ratios: dict[str, float | None] = field(default_factory=dict)

    @property
    def measured(self) -> bool:
        return self.status == "ok" and bool(self.runs)

    @property
    def median_rows_per_s(self) -> float:
        return statistics.median(run.rows_per_s for run in self.runs)

    @property
    def median_seconds(self) -> float:
        return statistics.median(run.seconds for run in self.runs)

    @property
    def median_cpu_seconds(self) -> float:
        return statistics.median(run.cpu_seconds for run in self.runs)

    @property
    def peak_rss_mib(self) -> float:
        return max(run.peak_rss_mib for run in self.runs)

    @property
    def counts(self) -> set[tuple[int, int]]:
        return {(run.valid, run.errors) for run in self.runs}

    def to_json(self) -> dict:
        data: dict = {
            "name": self.contender.name,
            "role": self.contender.role,
            "summary": self.contender.summary,
            "options": self.contender.options,
            "status": self.status,
            "reason": self.reason,
            "runs": [vars(run) for run in self.runs],
        }
        if self.measured:
            data |= {
                "median_rows_per_s": self.median_rows_per_s,
                "median_seconds": self.median_seconds,
                "median_cpu_seconds": self.median_cpu_seconds,
                "min_rows_per_s": min(run.rows_per_s for run in self.runs),
                "max_rows_per_s": max(run.rows_per_s for run in self.runs),
                "peak_rss_mib": self.peak_rss_mib,
                "ratios": self.ratios,
            }
        return data


def compute_ratios(scenario: Scenario, results: list[ContenderResult]) -> None:
    """Median rows/s of each contender divided by that of the baseline, the reference peer and the floor."""
    by_name = {result.contender.name: result for result in results if result.measured}
    denominators = {
        "vs_baseline": scenario.baseline,
        "vs_reference": scenario.reference,
        "of_floor": scenario.floor,
    }
    for result in results:
        if not result.measured:
            continue
        for ratio, name in denominators.items():
            other = by_name.get(name) if name else None
            result.ratios[ratio] = result.median_rows_per_s / other.median_rows_per_s if other else None


def count_disagreements(dataset: Dataset, results: list[ContenderResult]) -> list[str]:
    """Every contender must report exactly the generator's valid and error counts, in every run."""
    expected = (dataset.expected_valid, dataset.expected_errors)
    problems = []
    for result in results:
        if result.measured and result.counts != {expected}:
            got = ", ".join(f"{valid} valid / {errors} errors" for valid, errors in sorted(result.counts))
            problems.append(
                f"{result.contender.name}: {got}; expected {expected[0]} valid / {expected[1]} errors"
            )
    return problems


def _ratio_cell(value: float | None) -> str:
    return f"{value:.2f}x" if value is not None else "-"


def format_table(scenario: Scenario, dataset: Dataset, results: list[ContenderResult]) -> str:
    reference = scenario.reference
    header = (
        f"{'contender':<26} {'rows/s':>9} {'seconds':>8} {'cpu s':>7} {'rows/s min-max':>17} {'peak RSS':>10} "
        f"{'valid':>8} {'errors':>7} {'vs base':>8} {'vs ' + reference:>20} {'of floor':>9}"
    )
    lines = [
        f"scenario {scenario.name}: {dataset.rows:,} rows from {dataset.input_path.name} "
        f"(expected {dataset.expected_valid:,} valid, {dataset.expected_errors:,} errors); medians over repeats",
        header,
        "-" * len(header),
    ]
    expected = {(dataset.expected_valid, dataset.expected_errors)}
    for result in results:
        name = result.contender.name
        if not result.measured:
            last_line = (result.reason or "").strip().splitlines()[-1:] or [""]
            lines.append(f"{name:<26} {result.status.upper()}: {last_line[0]}")
            continue
        low = min(run.rows_per_s for run in result.runs)
        high = max(run.rows_per_s for run in result.runs)
        valid, errors = sorted(result.counts)[0]
        lines.append(
            f"{name:<26} {result.median_rows_per_s:>9,.0f} {result.median_seconds:>8.2f} "
            f"{result.median_cpu_seconds:>7.2f} "
            f"{f'{low:,.0f}-{high:,.0f}':>17} {result.peak_rss_mib:>6.0f} MiB {valid:>8} {errors:>7} "
            f"{_ratio_cell(result.ratios.get('vs_baseline')):>8} {_ratio_cell(result.ratios.get('vs_reference')):>20} "
            f"{_ratio_cell(result.ratios.get('of_floor')):>9}"
            + ("  <- counts differ from the generator's" if result.counts != expected else "")
        )
    return "\n".join(lines)


def _target_value(
    result: ContenderResult, target: Target, by_name: dict[str, ContenderResult]
) -> float | None:
    if target.metric == "peak_rss_mib":
        return result.peak_rss_mib
    if target.metric == "vs_contender":
        other = by_name.get(target.of or "")
        if other is None or not other.measured:
            return None
        return result.median_rows_per_s / other.median_rows_per_s
    return result.ratios.get(target.metric)


def _target_met(value: float, target: Target) -> bool:
    if target.metric == "peak_rss_mib":
        return value < target.threshold
    return value >= target.threshold


def check_targets(scenario: Scenario, results: list[ContenderResult]) -> list[dict]:
    """Each target of the scenario, checked for each contender of role "ours"."""
    checks = []
    by_name = {result.contender.name: result for result in results}
    for result in results:
        if result.contender.role != "ours":
            continue
        for target in scenario.targets:
            if target.contenders and result.contender.name not in target.contenders:
                continue
            value = _target_value(result, target, by_name) if result.measured else None
            met = None if value is None else _target_met(value, target)
            checks.append(
                {"contender": result.contender.name, "target": target.label, "value": value, "met": met}
            )
    return checks


def format_targets(checks: list[dict]) -> str:
    lines = ["targets (ours):"]
    for check in checks:
        if check["met"] is None:
            verdict, value = "NOT MEASURED", ""
        else:
            verdict, value = ("MET" if check["met"] else "MISSED"), f"{check['value']:.2f}"
        lines.append(f"  {check['contender']:<28} {check['target']:<46} {value:>8}  {verdict}")
    return "\n".join(lines)


def format_floor_note(scenario: Scenario, results: list[ContenderResult]) -> str | None:
    """One line per contender of ours: the share of the floor's rows/s it reaches."""
    notes = [
        f"  {result.contender.name} runs at {result.ratios['of_floor']:.0%} of the floor"
        for result in results
        if result.contender.role == "ours" and result.measured and result.ratios.get("of_floor") is not None
    ]
    header = f"{scenario.floor}: the same Python work on pre-parsed rows, no I/O"
    return "\n".join([header, *notes]) if notes else None
