"""The contenders of the parallel-map benchmark (``parallel_map.py``), per scenario.

A contender names a runner ``run(scenario, n, **options) -> dict`` in ``ours`` or ``peers``: it
sets up untimed (pool, cluster, Ray), times the map with ``measure.timed``, checks every
result (``common.consume``) and returns ``{"seconds", "rss_growth_mib", "items", ...}``.
A contender with ``sweep`` runs once per option set first; its repeats use the fastest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Contender:
    name: str
    runner: str  # "module:function" under map_contenders
    role: str = "peer"  # "ours" or "peer"
    group: str = "local"  # local processes, "ray" or "dask": whom its ratio is taken against
    options: dict[str, Any] = field(default_factory=dict)
    sweep: tuple[dict[str, Any], ...] = ()
    #: Runs only when named in --only (slow, and only for comparison).
    optional: bool = False
    #: distribution -> the version this contender stands for.
    pins: dict[str, str] = field(default_factory=dict)
    #: At most this many items, for a peer too slow to run them all: compared by items/s.
    max_items: int | None = None


RAY_MAP = {"ray-map": "1.0.3"}


def ours(engine: str, **options: Any) -> Contender:
    group = "local" if engine == "multiprocess" else engine
    suffix = "-checkpoint" if options.get("checkpoint") else ""
    return Contender(
        f"ours-{engine}{suffix}", "ours:run", role="ours", group=group, options={"engine": engine, **options}
    )


OURS = [ours("multiprocess"), ours("ray"), ours("dask")]

CONTENDERS: dict[str, list[Contender]] = {
    "trivial": [
        *OURS,
        Contender("pool-imap", "peers:pool_imap", sweep=({"chunksize": 1000}, {"chunksize": 10000})),
        Contender("mpire", "peers:mpire_imap"),
        Contender("joblib-loky", "peers:joblib_loky"),
        Contender("ray-tasks", "peers:ray_tasks", group="ray", sweep=({"chunk": 2000}, {"chunk": 10000})),
        Contender(
            "ray-actorpool", "peers:ray_actor_pool", group="ray", sweep=({"chunk": 2000}, {"chunk": 10000})
        ),
        # batch_size=1 (ray-map 1.0.3's default): about 0.5-5k items/s here, so 20,000 items.
        Contender("ray-map-default", "peers:raymap", group="ray", pins=RAY_MAP, max_items=20_000),
        Contender(
            "ray-map-best",
            "peers:raymap",
            group="ray",
            pins=RAY_MAP,
            sweep=tuple({"batch_size": b} for b in (64, 256, 1024, 4096)),
        ),
        Contender(
            "dask-client-map",
            "peers:dask_client_map",
            group="dask",
            sweep=tuple({"chunk": c, "pickled": p} for p in (False, True) for c in (2000, 10000)),
        ),
    ],
    "sleep": list(OURS),
    "faults": list(OURS),
    "memory": [
        ours("multiprocess"),
        Contender("pool-imap", "peers:pool_imap", options={"chunksize": 1000}),
        # ray-map materialises the input and keeps every result; about a minute at 1M items.
        Contender(
            "ray-map", "peers:raymap", group="ray", pins=RAY_MAP, options={"batch_size": 1024}, optional=True
        ),
    ],
    "checkpoint": [ours("multiprocess"), ours("multiprocess", checkpoint=True)],
}

SCENARIOS = list(CONTENDERS)
