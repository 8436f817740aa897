"""How long a local engine takes to start and to shut down.

    .venv/bin/python benchmarks/engine_start.py [--repeats 5] [--engines multiprocess,ray,ray-dashboard,dask]

Each repeat runs in a fresh process (imports excluded from the clock), repeats interleaved
round-robin across the engines, so load on the machine hits them alike. Measures
``engine.start()`` (MultiProcessEngine(max_workers=2); RayEngine(): a local Ray, with its
readied pipe actors; ray-dashboard: the same with Ray's dashboard, as ray.init starts it by
default; DaskEngine(): a LocalCluster of 2 worker processes), a first
``submit_dedicated`` round trip, and ``shutdown()``. For Ray it also splits start() into
``ray.init`` and the rest (the progress actor and the readied pipe actors). Prints medians and
the spread (min-max), and the machine.

``--ray-init KEY=VALUE`` (repeatable) passes extra ``ray.init`` options to RayEngine, to compare
settings: ``--ray-init include_dashboard=true`` measures Ray's default dashboard.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import statistics
import subprocess
import sys
import time

ENGINES = {
    "multiprocess": ("zoopipe_core.engines", "MultiProcessEngine", {"max_workers": 2}),
    "ray": ("zoopipe_ray", "RayEngine", {}),
    # Ray's own default, with the dashboard (RayEngine's local start leaves it out).
    "ray-dashboard": ("zoopipe_ray", "RayEngine", {"include_dashboard": True}),
    "dask": ("zoopipe_dask", "DaskEngine", {"n_workers": 2}),
}


def _noop() -> int:
    return 1


def measure(name: str, ray_init: dict[str, object]) -> dict[str, float]:
    import importlib

    module, cls, options = ENGINES[name]
    engine_class = getattr(importlib.import_module(module), cls)
    if name.startswith("ray"):
        options = {**options, **ray_init}
        import ray  # imported before the clock, like the other engines' libraries

        init = ray.init
        timing: dict[str, float] = {}

        def timed_init(*args: object, **kwargs: object) -> object:
            began = time.perf_counter()
            try:
                return init(*args, **kwargs)
            finally:
                timing["ray_init_s"] = time.perf_counter() - began

        ray.init = timed_init  # type: ignore[assignment]
    elif name == "dask":
        import distributed  # noqa: F401
    engine = engine_class(**options)
    began = time.perf_counter()
    engine.start()
    result = {"start_s": time.perf_counter() - began}
    if name.startswith("ray"):
        result.update(timing)
    began = time.perf_counter()
    engine.submit_dedicated(_noop).result()
    result["first_dedicated_task_s"] = time.perf_counter() - began
    began = time.perf_counter()
    engine.shutdown()
    result["shutdown_s"] = time.perf_counter() - began
    return result


def _parse_ray_init(items: list[str]) -> dict[str, object]:
    options: dict[str, object] = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            options[key] = ast.literal_eval(value.capitalize() if value in ("true", "false") else value)
        except (ValueError, SyntaxError):
            options[key] = value
    return options


def machine() -> str:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return (
        f"{platform.node()} {platform.machine()} {cpus} CPUs, load {load}, Python {platform.python_version()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--engines", default="multiprocess,ray,ray-dashboard,dask")
    parser.add_argument("--ray-init", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", help="also write the raw runs to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    ray_init = _parse_ray_init(args.ray_init)
    if args.child:
        print(json.dumps(measure(args.child, ray_init)))
        return
    engines = args.engines.split(",")
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {machine()}")
    if ray_init:
        print(f"ray.init options: {ray_init}")
    runs: dict[str, list[dict[str, float]]] = {engine: [] for engine in engines}
    for repeat in range(args.repeats):
        for engine in engines[repeat % len(engines) :] + engines[: repeat % len(engines)]:
            command = [sys.executable, __file__, "--child", engine]
            command += [f"--ray-init={item}" for item in args.ray_init]
            out = subprocess.run(command, capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(f"{engine} failed:\n{out.stderr[-3000:]}")
            runs[engine].append(json.loads(out.stdout.strip().splitlines()[-1]))
    keys = ["start_s", "ray_init_s", "first_dedicated_task_s", "shutdown_s"]
    print(f"{'engine':14}" + "".join(f"{key:>26}" for key in keys))
    for engine, results in runs.items():
        cells = []
        for key in keys:
            values = [r[key] for r in results if key in r]
            cells.append(
                f"{statistics.median(values):8.2f} ({min(values):.2f}-{max(values):.2f})" if values else "-"
            )
        print(f"{engine:14}" + "".join(f"{cell:>26}" for cell in cells))
    if args.json:
        with open(args.json, "w") as file:
            json.dump({"machine": machine(), "ray_init": ray_init, "runs": runs}, file, indent=1)


if __name__ == "__main__":
    main()
