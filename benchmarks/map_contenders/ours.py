"""Ours: ``zoopipe_core.ParallelMap`` with default settings on each engine.

The engine is created with its defaults and started before the clock (a process pool, a Ray
joined after ``ray.init(num_cpus=2)``, a Dask LocalCluster), as the peers' pools and clusters
are; the timed part is ``ParallelMap(fn, engine=engine).imap(...)`` consumed to the end.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from map_contenders.common import FUNCTIONS, consume
from map_contenders.measure import timed


def _engine(name: str) -> Any:
    if name == "multiprocess":
        from zoopipe_core.plugins import resolve_engine

        return resolve_engine("multiprocess")  # the instance engine="multiprocess" would make
    if name == "ray":
        from map_contenders.common import start_ray

        start_ray()
        from zoopipe_ray import RayEngine

        return RayEngine()
    if name == "dask":
        from zoopipe_dask import DaskEngine

        return DaskEngine()
    raise ValueError(f"unknown engine {name!r}")


def run(scenario: str, n: int, engine: str, checkpoint: bool = False) -> dict[str, Any]:
    from zoopipe_core import ParallelMap

    folder = tempfile.mkdtemp(prefix="zoopipe-map-bench-")
    options: dict[str, Any] = {}
    if checkpoint:
        # A fresh path each run: the journal starts empty, nothing is replayed.
        options["checkpoint_path"] = os.path.join(folder, "journal")
    eng = _engine(engine)
    eng.start()
    try:
        pm = ParallelMap(FUNCTIONS[scenario], engine=eng, **options)
        try:
            extra, measured = timed(lambda: consume(scenario, pm.imap, n))
        finally:
            pm.close()
        if checkpoint:
            extra["journal_bytes"] = os.path.getsize(options["checkpoint_path"])
    finally:
        eng.shutdown()
        if engine == "ray":
            import ray

            ray.shutdown()
        shutil.rmtree(folder, ignore_errors=True)
    return {**measured, **extra}
