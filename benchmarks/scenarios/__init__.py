"""Registry of benchmark scenarios, by the name ``run.py --scenario`` takes.

To add one (say CSV -> Parquet with no Python stage), write a module here that builds a
``Scenario`` with its data preparation, contenders (modules under ``contenders/``), output checks
and targets, and add it to ``SCENARIOS``; the runner, the table and the results file need nothing
else.
"""

from __future__ import annotations

from scenarios import conversions, etl, parallel
from scenarios.base import Contender, Dataset, Scenario, Target

SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario for scenario in (etl.SCENARIO, *conversions.SCENARIOS, parallel.SCENARIO)
}

__all__ = ["SCENARIOS", "Contender", "Dataset", "Scenario", "Target"]
