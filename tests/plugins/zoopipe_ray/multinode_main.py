"""Run by test_multinode_ray.py in a process of its own (Ray allows one cluster per process): a Ray
cluster of three raylets from ``ray.cluster_utils.Cluster``, each its own node with its own
object store, the head holding no CPU, so the driver's node runs none of the work. With the
fixture project as the working directory, a RayEngine started with no configuration ships the
project's code to every node and installs its requirement once per node (each node keeps its
runtime_env directory apart); tasks, a parallel map, a shared object and a sharded pipe run on
the two worker nodes, and a second engine reuses each node's install. Writes what it saw as JSON to the path given.

Usage: python multinode_main.py PROJECT_DIR CSV_PATH RESULT_JSON
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def node_and_value(_: int) -> tuple[str, int]:
    """Where this ran, and the fixture package's value (imported there)."""
    import importlib

    import ray

    return ray.get_runtime_context().get_node_id(), importlib.import_module("zoopipe_fixture_shop").VALUE


def node_and_requirement(_: int) -> tuple[str, str, int]:
    """Where this ran, the version of the project's requirement installed there, and which worker process."""
    import importlib.metadata

    import ray

    return ray.get_runtime_context().get_node_id(), importlib.metadata.version("cowsay"), os.getpid()


def pip_environments(cluster: Any) -> dict[str, list[str]]:
    """Per node, the Python environments Ray's pip plugin built in that node's own runtime_env directory."""
    found = {}
    for node in [cluster.head_node, *cluster.worker_nodes]:
        pip_dir = os.path.join(node.get_runtime_env_dir_path(), "pip")
        names = sorted(os.listdir(pip_dir)) if os.path.isdir(pip_dir) else []
        found[node.node_id] = [name for name in names if os.path.isdir(os.path.join(pip_dir, name))]
    return found


def total(ref: Any) -> tuple[str, int]:
    import ray

    return ray.get_runtime_context().get_node_id(), sum(ref.get())


def main(project: str, source: str, result_path: str) -> None:
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for number in range(2):
        # Nodes on one machine share a session directory; a runtime_env directory of its own per node makes
        # each install cache node-local, as on separate machines.
        cluster.add_node(num_cpus=2, runtime_env_dir_name=f"runtime_resources_node{number}")
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        head = ray.get_runtime_context().get_node_id()
        os.chdir(project)  # after ray.init: the workers' import path does not include it

        from zoopipe_ray import RayEngine

        from zoopipe_core import CSVInputAdapter, CSVOutputAdapter, ParallelMap, Pipe, PipeManager
        from zoopipe_core.testing import UserSchema

        with RayEngine(warm_workers=4) as engine:
            requirements = list(engine.environment.requirements)
            shipped = list(engine.environment.code_paths)
            installed = [
                f.result(timeout=600) for f in [engine.submit(node_and_requirement, n) for n in range(16)]
            ]
            tasks = [f.result(timeout=120) for f in [engine.submit(node_and_value, n) for n in range(8)]]
            mapped = ParallelMap(node_and_value, engine=engine, batch_size=10).map(range(200))
            ref = engine.share(list(range(10_000)))
            shared = [f.result(timeout=120) for f in [engine.submit(total, ref) for _ in range(6)]]
            out = os.path.join(os.path.dirname(result_path), "users-out.csv")
            pipe = Pipe(CSVInputAdapter(source), CSVOutputAdapter(out), schema_model=UserSchema)
            report = PipeManager.parallelize_pipe(pipe, workers=2, should_merge=True, engine=engine).run(
                show_progress=False
            )
            with open(out) as file:
                pipe_lines = sum(1 for _ in file)
        environments_after_first_run = pip_environments(cluster)
        with RayEngine(warm_workers=4) as engine:  # unchanged spec: every node reuses its environment
            installed_again = [
                f.result(timeout=600) for f in [engine.submit(node_and_requirement, n) for n in range(8)]
            ]
        environments_after_second_run = pip_environments(cluster)
        result = {
            "nodes": len([n for n in ray.nodes() if n["Alive"]]),
            "head": head,
            "shipped": shipped,
            "requirements": requirements,
            "installed": installed,
            "installed_again": installed_again,
            "environments": environments_after_first_run,
            "environments_again": environments_after_second_run,
            "tasks": tasks,
            "mapped": mapped,
            "shared": shared,
            "pipe": {"success": report.success_count, "errors": report.error_count, "lines": pipe_lines},
        }
    finally:
        ray.shutdown()
        cluster.shutdown()
    with open(result_path, "w") as file:
        json.dump(result, file)


if __name__ == "__main__":
    main(*sys.argv[1:4])
