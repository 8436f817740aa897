"""How long an engine takes to start when it ships a project's environment: first and cached.

    .venv-bench/bin/python benchmarks/env_startup.py [--repeats 3] [--engines ray,dask]

Each repeat is a fresh process per engine with a fresh local cluster of 2 CPUs (a local Ray
without its dashboard, or a Dask LocalCluster of 2 worker processes whose install cache,
``ZOOPIPE_CACHE_DIR``, starts empty), in which engines start one after the other, each in a
fixture project made for the run (a package the workers cannot import, a 3 MiB data file its
.rayignore leaves out):

- ``none``: ``environment=None``, nothing shipped (the baseline);
- ``code``: the project with requirements the workers already satisfy: the probe, the code
  upload;
- ``install first``: the project requiring ``cowsay==6.1`` (absent here): installed during
  ``start`` (Ray: its pip environment on the node; Dask: once for the host, both workers);
- ``install cached``: the same project again on the same cluster: the install is reused.

The clock covers ``start()`` and one task round trip (which imports the project's package).
pip's own download cache is warm in every scenario (as on a machine that installed once).
Prints medians and spreads of the repeats, and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCENARIOS = ("none", "code", "install first", "install cached")


def child(engine_name: str) -> dict[str, float]:
    from zoopipe_core.testing.projects import fixture_project, shop_probe

    scratch = Path(tempfile.mkdtemp(prefix="zoopipe-env-bench-"))
    code_only = fixture_project(scratch / "code", "pluggy>=1\n")
    installing = fixture_project(scratch / "install", "pluggy>=1\ncowsay==6.1\n")
    probe = shop_probe()
    if engine_name == "ray":
        import ray
        from zoopipe_ray import RayEngine

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)

        def make(**options: object) -> object:
            return RayEngine(**options)

        close = ray.shutdown
    else:
        from distributed import LocalCluster
        from zoopipe_dask import DaskEngine

        os.environ["ZOOPIPE_CACHE_DIR"] = str(scratch / "cache")  # the workers inherit it
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0")

        def make(**options: object) -> object:
            return DaskEngine(cluster.scheduler_address, **options)

        close = cluster.close

    def timed(directory: Path | None, **options: object) -> float:
        os.chdir(directory or scratch)
        began = time.perf_counter()
        with make(**options) as engine:  # type: ignore[attr-defined]
            if directory is not None:
                assert engine.submit(probe).result(timeout=600)[0] == 42
            else:
                assert engine.submit(int, 1).result(timeout=600) == 1
            return time.perf_counter() - began

    result = {
        "none": timed(None, environment=None),
        "code": timed(code_only),
        "install first": timed(installing),
        "install cached": timed(installing),
    }
    close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--engines", default="ray,dask")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    engines = args.engines.split(",")
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in engines}
    for repeat in range(args.repeats):
        for name in engines:  # interleaved, so load on the machine hits both alike
            done = subprocess.run(
                [sys.executable, __file__, "--child", name], capture_output=True, text=True, timeout=1800
            )
            if done.returncode != 0:
                sys.exit(f"{name} repeat {repeat + 1} failed:\n{done.stderr[-3000:]}")
            runs[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(
                f"{name} repeat {repeat + 1}: "
                + ", ".join(f"{k} {v:.2f} s" for k, v in runs[name][-1].items()),
                flush=True,
            )
    print(
        f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(f"{'engine':<6} {'scenario':<16} {'median s':>9} {'min-max s':>13} {'vs none':>8}")
    for name in engines:
        baseline = statistics.median(run["none"] for run in runs[name])
        for scenario in SCENARIOS:
            values = [run[scenario] for run in runs[name]]
            median = statistics.median(values)
            print(
                f"{name:<6} {scenario:<16} {median:>9.2f} {min(values):>6.2f}-{max(values):<6.2f} {median / baseline:>7.2f}x"
            )


if __name__ == "__main__":
    main()
