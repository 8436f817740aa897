"""Engine start-up time and per-task / per-shard overhead, per engine.

    python engine_overhead.py [--repeats 3] [--engines multiprocess,ray,dask]

For each engine, in a fresh process per repeat: the time to start it (Ray: a local cluster;
Dask: a LocalCluster of 2 worker processes), the wall time of a 2-shard parallelize_pipe on a
2-record file right after start (the fixed cost a shard adds: start a task, run a pipe, report,
merge), the round trip of a no-op task (median of 20 after a warm-up), and the same 2-shard run
again after those tasks (on Ray, pipes then get new actors: plain tasks release the actors
start readied). Prints medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time


def _noop() -> int:
    return 1


def measure(engine_name: str) -> dict[str, float]:
    import os
    import tempfile

    from zoopipe_core import JSONInputAdapter, JSONOutputAdapter, Pipe, PipeManager
    from zoopipe_core.plugins import resolve_engine

    options = {"multiprocess": {"max_workers": 2}, "ray": {"num_cpus": 1}, "dask": {}}[engine_name]
    engine_class = type(resolve_engine(engine_name))
    started = time.perf_counter()
    engine = engine_class(**options)
    engine.start()
    startup = time.perf_counter() - started
    folder = tempfile.mkdtemp()
    source = os.path.join(folder, "in.jsonl")
    with open(source, "w") as f:
        f.write('{"n": 1}\n{"n": 2}\n')

    def two_shard_run() -> float:
        t = time.perf_counter()
        manager = PipeManager.parallelize_pipe(
            Pipe(JSONInputAdapter(source), JSONOutputAdapter(os.path.join(folder, "out.jsonl"))),
            workers=2,
            should_merge=True,
            engine=engine,
        )
        manager.start()
        manager.wait()
        assert manager.report.success_count == 2, manager.report
        return time.perf_counter() - t

    first_run = two_shard_run()
    engine.submit(_noop).result()
    round_trips = []
    for _ in range(20):
        t = time.perf_counter()
        engine.submit(_noop).result()
        round_trips.append(time.perf_counter() - t)
    later_run = two_shard_run()
    engine.shutdown()
    return {
        "startup_s": startup,
        "task_round_trip_ms": statistics.median(round_trips) * 1000,
        "two_shard_run_s": first_run,
        "later_two_shard_run_s": later_run,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--engines", default="multiprocess,ray,dask")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child)))
        return
    print(
        f"{'engine':14} {'start-up s':>11} {'2-shard run s':>14} {'no-op task ms':>14} {'later 2-shard run s':>20}"
    )
    for engine in args.engines.split(","):
        runs = []
        for _ in range(args.repeats):
            out = subprocess.run(
                [sys.executable, __file__, "--child", engine], capture_output=True, text=True, check=True
            )
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(
            f"{engine:14} {med['startup_s']:11.2f} {med['two_shard_run_s']:14.2f} "
            f"{med['task_round_trip_ms']:14.1f} {med['later_two_shard_run_s']:20.2f}"
        )


if __name__ == "__main__":
    main()
