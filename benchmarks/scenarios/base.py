"""The shapes a benchmark scenario is made of: its data set, its contenders and its targets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from contenders.common import Job

Role = Literal["floor", "baseline", "peer", "ours"]


@dataclass(frozen=True)
class Contender:
    """One way of doing the scenario's work, run in its own process.

    ``module`` exposes ``build(job, **options)`` (see ``contenders/__init__.py``); ``packages``
    are the distributions whose versions the results record; ``pins`` maps a distribution to the
    exact version the contender stands for (another installed version counts as not installed).
    """

    name: str
    module: str
    role: Role
    summary: str
    packages: tuple[str, ...] = ()
    pins: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Dataset:
    """The input every contender reads, and the counts each must report for it."""

    input_path: Path
    rows: int
    expected_valid: int
    expected_errors: int
    meta: dict


@dataclass(frozen=True)
class Target:
    """A goal that contenders of role "ours" must meet, checked and printed after the table.

    ``metric`` is one of "vs_baseline", "vs_reference", "vs_contender" (ratios of median
    rows/s, at least ``threshold``; "vs_contender" divides by the contender named ``of``) or
    "peak_rss_mib" (at most ``threshold``). ``contenders`` names the ones it applies to
    (empty: every contender of ours).
    """

    metric: Literal["vs_baseline", "vs_reference", "vs_contender", "peak_rss_mib"]
    threshold: float
    label: str
    contenders: tuple[str, ...] = ()
    of: str | None = None


@dataclass(frozen=True)
class Scenario:
    """A benchmark: one data set, the same work done by every contender, ratios against named ones.

    ``baseline``, ``reference`` (the peer to beat) and ``floor`` name contenders whose median
    rows/s the ratio columns divide by; ``verify_outputs`` inspects a finished run's files and
    returns what is wrong with them (nothing when they are right).
    """

    name: str
    summary: str
    contenders: tuple[Contender, ...]
    prepare_data: Callable[[int, Path], Dataset]
    verify_outputs: Callable[[Job, tuple[int, int]], list[str]]
    output_suffix: str
    baseline: str
    reference: str
    floor: str | None
    targets: tuple[Target, ...] = ()
    default_rows: int = 1_000_000

    def contender(self, name: str) -> Contender:
        for contender in self.contenders:
            if contender.name == name:
                return contender
        known = ", ".join(c.name for c in self.contenders)
        raise KeyError(f"scenario {self.name!r} has no contender {name!r}; known: {known}")
