"""Many nodes, simulated on this machine: a Ray cluster of three raylets (ray.cluster_utils.Cluster,
in a process of its own: see multinode_main.py), the driver's node holding no CPU, each node with
its own runtime_env directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from zoopipe_core.testing.projects import fixture_project

HERE = Path(__file__).parent


def test_code_and_requirements_reach_every_node_once_and_work_runs_where_the_driver_is_not(tmp_path):
    project = fixture_project(tmp_path / "shop", requirements="pluggy>=1\ncowsay==6.1\n")
    source = tmp_path / "users.csv"
    source.write_text("user_id,username,email\n" + "".join(f"{n},user{n},u{n}@x.io\n" for n in range(500)))
    result_path = tmp_path / "result.json"
    run = subprocess.run(
        [sys.executable, str(HERE / "multinode_main.py"), str(project), str(source), str(result_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(result_path.read_text())
    assert result["nodes"] == 3
    # The project's package is not on the workers' import path: it shipped, to both nodes.
    assert result["shipped"] == [str(project / "zoopipe_fixture_shop")]
    head = result["head"]
    # cowsay is absent from the driver's environment: installed from the index on each worker node, once
    # per node however many worker processes use it, and reused by a second engine with the same spec.
    assert result["requirements"] == ["cowsay==6.1"]
    for runs in (result["installed"], result["installed_again"]):
        assert {version for _, version, _ in runs} == {"6.1"}
        assert len({node for node, _, _ in runs}) == 2 and head not in {node for node, _, _ in runs}
    processes_per_node = {}
    for node, _, pid in result["installed"]:
        processes_per_node.setdefault(node, set()).add(pid)
    assert all(len(pids) >= 2 for pids in processes_per_node.values()), processes_per_node
    worker_nodes = set(processes_per_node)
    assert {node: len(envs) for node, envs in result["environments"].items() if node in worker_nodes} == {
        node: 1 for node in worker_nodes
    }
    assert result["environments_again"] == result["environments"]
    task_nodes = {node for node, value in result["tasks"] if value == 42}
    assert len(result["tasks"]) == 8 and len(task_nodes) == 2 and head not in task_nodes
    map_nodes = {node for node, _ in result["mapped"]}
    assert [value for _, value in result["mapped"]] == [42] * 200
    assert len(map_nodes) == 2 and head not in map_nodes
    assert {total for _, total in result["shared"]} == {sum(range(10_000))}
    assert head not in {node for node, _ in result["shared"]}
    assert result["pipe"] == {"success": 500, "errors": 0, "lines": 501}
