"""The ETL job of ``etl.py`` on one pipe and split over 2 workers, on each engine.

The reference is the single pipe: "vs zoopipe-core" is the parallel speed-up. The target of the
engines issue: ``parallelize_pipe(workers=2)`` at least 1.8x the single pipe with the default
engine; Ray and Dask within 15% of it (both checked after the table).
"""

from __future__ import annotations

import dataclasses

from scenarios import etl
from scenarios.base import Contender, Target

# The single pipe is what the parallel runs are divided by, not a contender to rate.
_SINGLE = dataclasses.replace(etl.SCENARIO.contender("zoopipe-core"), role="baseline")

CONTENDERS = (
    _SINGLE,
    *(
        Contender(
            name=f"zoopipe-core-x2-{engine}",
            module="contenders.zoopipe_core_parallel",
            role="ours",
            summary=f"ours: parallelize_pipe(workers=2, should_merge=True) on the {engine} engine",
            packages=("zoopipe-core",),
            options={"engine": engine, "workers": "2"},
        )
        for engine in ("multiprocess", "ray", "dask")
    ),
)

SCENARIO = dataclasses.replace(
    etl.SCENARIO,
    name="etl-parallel",
    summary="the etl job on one pipe and on 2 shards per engine (merged outputs)",
    contenders=CONTENDERS,
    baseline="zoopipe-core",
    reference="zoopipe-core",
    floor=None,
    targets=(
        Target(
            metric="vs_reference",
            threshold=1.8,
            label=">= 1.8x the single pipe",
            contenders=("zoopipe-core-x2-multiprocess",),
        ),
        *(
            Target(
                metric="vs_contender",
                threshold=0.85,
                label="within 15% of multiprocess",
                contenders=(f"zoopipe-core-x2-{engine}",),
                of="zoopipe-core-x2-multiprocess",
            )
            for engine in ("ray", "dask")
        ),
    ),
)
