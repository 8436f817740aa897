"""ModelWrapper on Ray: weights in Ray's object store once per node, loaded by actors, tasks and
Ray Data's actor pool, mapped copy-on-write."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from zoopipe_zerocopy import ModelWrapper
from zoopipe_zerocopy import testing as zc_models

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def two_raylets(tmp_path_factory) -> dict:
    """What ray_main.py saw on its cluster of two raylets (started once for this module)."""
    result_path = tmp_path_factory.mktemp("two_raylets") / "result.json"
    run = subprocess.run(
        [sys.executable, str(HERE / "ray_main.py"), str(result_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return json.loads(result_path.read_text())


def test_the_seeds_ray_data_example_runs_as_written(two_raylets):
    result = two_raylets["seed"]
    assert result["rows"] == 64 and result["equal"], result
    assert result["processes"] >= 2
    assert "Ray's object store" in result["where"]


def test_on_two_raylets_each_node_holds_one_copy(two_raylets):
    result = two_raylets["nodes"]
    by_node: dict[str, list[dict]] = {}
    for report in result["reports"]:
        by_node.setdefault(report["node"], []).append(report)
    assert sorted(by_node) == sorted(result["workers"])
    files = set()
    for reports in by_node.values():
        first, second = reports
        assert first["pid"] != second["pid"]
        # Both actors of a node map the same bytes of that node's object store.
        assert first["places"] == second["places"]
        files |= {place[0] for place in first["places"].values()}
    assert len(files) == 2  # two nodes, two object stores, one copy in each


def test_wrapping_into_rays_object_store_needs_at_most_one_extra_model_size_of_driver_memory():
    # Ray's first put sets itself up (about 30 MB, whatever the size): not the model's cost.
    prelude = (
        "import ray; ray.init(address='local', num_cpus=1, include_dashboard=False, log_to_driver=False); "
        "ray.get(ray.put(bytes(1 << 20)))"
    )
    size, growth, where = zc_models.driver_memory_of_wrapping(prelude)
    assert "Ray's object store" in where
    assert growth <= 1.1 * size, (growth / size, "model sizes of extra driver memory")


@pytest.fixture
def ray(ray_cluster):
    import ray

    return ray


def test_with_ray_initialised_actors_map_one_copy_in_the_object_store(ray, tmp_path):
    torch.manual_seed(6)
    model = zc_models.TiedLM()
    wrapper = ModelWrapper.from_model(model)
    assert "Ray's object store" in repr(wrapper)

    @ray.remote(num_cpus=0.1)
    class Holder:
        def __init__(self, wrapper, folder):
            self.report = zc_models.locate_after_meeting(wrapper, folder, 2)
            self.wrapper = wrapper

        def where(self):
            return self.report

        def write_while_another_reads(self, folder, writer):
            return zc_models.write_while_another_reads(self.wrapper, folder, writer)

        def predict(self, tokens):
            return zc_models.run_tied(self.wrapper, tokens)

    holders = [Holder.remote(wrapper, str(tmp_path / "meet")) for _ in range(2)]
    (tmp_path / "meet").mkdir()
    first, second = ray.get([holder.where.remote() for holder in holders])
    assert first["pid"] != second["pid"]
    assert first["places"] == second["places"]
    assert all("plasma" in place[2] for place in first["places"].values())
    assert first["warnings"] == second["warnings"] == []

    (tmp_path / "write").mkdir()
    written, read = ray.get(
        [
            holder.write_while_another_reads.remote(str(tmp_path / "write"), writer)
            for holder, writer in zip(holders, (True, False), strict=True)
        ]
    )
    original = zc_models.first_weight(ModelWrapper.from_model(model, engine="multiprocess"))
    assert written == pytest.approx(original + 10.0) and read == original
    tokens = [[1, 2], [3, 4]]
    with torch.no_grad():
        assert torch.equal(ray.get(holders[1].predict.remote(tokens)), model(torch.tensor(tokens)))
    for holder in holders:
        ray.kill(holder)
    wrapper.release()


@pytest.mark.parametrize("kind", ["torchscript", "bfloat16"])
def test_torchscript_and_bfloat16_models_on_ray_tasks_are_bit_exact(ray, kind):
    torch.manual_seed(7)
    eager = zc_models.TiedLM()
    model = torch.jit.script(eager) if kind == "torchscript" else eager.to(torch.bfloat16)
    wrapper = ModelWrapper.from_model(model)
    tokens = [[5, 6, 7]]
    task = ray.remote(num_cpus=0.1)(zc_models.run_tied)
    with torch.no_grad():
        assert torch.equal(ray.get(task.remote(wrapper, tokens)), model(torch.tensor(tokens)))
    locations = ray.get(
        [ray.remote(num_cpus=0.1)(zc_models.load_and_locate).remote(wrapper) for _ in range(2)]
    )
    assert all("plasma" in place[2] for location in locations for place in location["places"].values())
    wrapper.release()


def test_task_mode_with_ray_initialised_runs_on_ray(ray):
    pipeline = zc_models.Pipeline()
    wrapper = ModelWrapper.from_model(pipeline, mode="task")
    assert "RayEngine.share" in repr(wrapper)
    remote = wrapper.load()
    x = torch.randn(2, 8)
    expected, got = pipeline(x), remote(x)
    assert all(torch.equal(got[name], expected[name]) for name in expected)
    wrapper.release()  # shuts down the RayEngine it made (the session's Ray stays up)
    assert ray.is_initialized()


def test_a_restarted_actor_loads_again_and_a_released_wrapper_says_so(ray):
    model = zc_models.TiedLM()
    wrapper = ModelWrapper.from_model(model)

    @ray.remote(num_cpus=0.1, max_restarts=1, max_task_retries=0)
    class Holder:
        def __init__(self, wrapper):
            self.model = wrapper.load()

        def first(self):
            return float(self.model.embed.weight[0, 0].detach())

        def die(self):
            os._exit(1)

    holder = Holder.remote(wrapper)
    before = ray.get(holder.first.remote())
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(holder.die.remote())
    # Calls fail while Ray restarts the actor; its new process loads the weights again.
    deadline = time.monotonic() + 60
    while True:
        try:
            assert ray.get(holder.first.remote()) == before
            break
        except ray.exceptions.ActorUnavailableError:
            assert time.monotonic() < deadline, "the actor did not restart"
            time.sleep(0.2)
    ray.kill(holder)
    wrapper.release()
    with pytest.raises(ray.exceptions.RayTaskError, match="shared weights are gone"):
        ray.get(ray.remote(num_cpus=0.1)(zc_models.first_weight).remote(wrapper))


def test_weights_a_worker_loaded_stay_intact_after_release_and_new_objects(ray):
    """Released weights stay in use while a worker's tensors read them: Ray must not free the
    object and reuse its pages for the next objects put (a private mapping would follow them)."""
    import gc

    import numpy as np

    torch.manual_seed(8)
    model = torch.nn.Linear(512, 512)  # 1 MiB: reused pages would show in the checksum
    expected = float(model.weight.detach().double().sum())
    wrapper = ModelWrapper.from_model(model)

    @ray.remote(num_cpus=0.1)
    class Holder:
        def __init__(self, wrapper):
            self.model = wrapper.load()  # the wrapper itself is not kept

        def checksum(self):
            return float(self.model.weight.detach().double().sum())

    holder = Holder.remote(wrapper)
    assert ray.get(holder.checksum.remote()) == expected
    wrapper.release()
    del wrapper
    gc.collect()
    filler = [ray.put(np.full(1 << 20, 255, dtype=np.uint8)) for _ in range(16)]
    assert ray.get(holder.checksum.remote()) == expected
    del filler
    ray.kill(holder)
