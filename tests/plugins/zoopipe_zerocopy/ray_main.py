"""Run by test_zerocopy_ray.py in a process of its own (Ray allows one cluster per process): a cluster of
two worker raylets from ``ray.cluster_utils.Cluster`` (the driver's head node holds no CPU).

``nodes``: two actors per node load one wrapper and report where their weights live.
``seed``: the seed document's Ray Data example as written, with ``from zoopipe_zerocopy import
ModelWrapper`` (ActorPoolStrategy(size=4) needs the two nodes' 4 CPUs).

Usage: python ray_main.py RESULT_JSON
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import torch
from zoopipe_zerocopy import testing as zc_models


class MyPipeline:
    def __init__(self) -> None:
        torch.manual_seed(5)
        self.model = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 4))

    def __call__(self, data):
        # One row at a time: results do not depend on how Ray Data groups rows into batches.
        with torch.no_grad():
            return np.stack([self.model(torch.as_tensor(row).unsqueeze(0))[0].numpy() for row in data])


def seed() -> dict:
    import ray
    from ray.data import ActorPoolStrategy
    from zoopipe_zerocopy import ModelWrapper

    rows = np.random.default_rng(0).standard_normal((64, 16)).astype(np.float32)
    ds = ray.data.from_items([{"id": i, "data": row} for i, row in enumerate(rows)])

    # --- the seed's example, with our import name ---
    pipeline = MyPipeline()
    model_wrapper = ModelWrapper.from_model(pipeline, mode="actor")

    class InferenceActor:
        def __init__(self, model_wrapper):
            self.pipeline = model_wrapper.load()

        def __call__(self, batch):
            return {
                "id": batch["id"],
                "out": self.pipeline(batch["data"]),
                "pid": np.full(len(batch["id"]), os.getpid()),
            }

    results = ds.map_batches(
        InferenceActor,
        fn_constructor_kwargs={"model_wrapper": model_wrapper},
        compute=ActorPoolStrategy(size=4),
    )
    # ---
    got = sorted(results.take_all(), key=lambda row: row["id"])
    expected = pipeline(rows)
    return {
        "rows": len(got),
        "equal": all(np.array_equal(row["out"], expected[row["id"]]) for row in got),
        "processes": len({int(row["pid"]) for row in got}),
        "where": repr(model_wrapper),
    }


def nodes(cluster) -> dict:
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    from zoopipe_zerocopy import ModelWrapper

    wrapper = ModelWrapper.from_model(zc_models.TiedLM(width=64))

    @ray.remote(num_cpus=1)
    class Holder:
        def __init__(self, wrapper):
            self.model = wrapper.load()

        def where(self):
            report = zc_models.where_weights_live(self.model)
            report["node"] = ray.get_runtime_context().get_node_id()
            return report

    workers = [node.node_id for node in cluster.worker_nodes]
    holders = [
        Holder.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote(wrapper)
        for node in workers
        for _ in range(2)
    ]
    reports = ray.get([holder.where.remote() for holder in holders])
    for holder in holders:
        ray.kill(holder)
    wrapper.release()
    return {"workers": workers, "head": cluster.head_node.node_id, "reports": reports}


def main(result_path: str) -> None:
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(2):
        cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        result = {"nodes": nodes(cluster), "seed": seed()}
    finally:
        ray.shutdown()
        cluster.shutdown()
    with open(result_path, "w") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main(sys.argv[1])
