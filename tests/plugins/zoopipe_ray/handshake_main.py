"""Run by test_environment_ray.py in a process of its own, from a directory without zoopipe in it:
a local Ray, and a RayEngine whose environment ships the zoopipe_core copy given (another build of
the compiled core) over the driver's. ``start()`` must fail the start-up handshake; prints the
error and whether the engine runs.

Usage: python handshake_main.py ZOOPIPE_CORE_COPY
"""

from __future__ import annotations

import sys


def main(copy: str) -> None:
    import ray
    from zoopipe_ray import RayEngine

    from zoopipe_core.engines import EnvironmentMismatch, WorkerEnvironment

    # address="local": a Ray of its own. ray.init() alone joins the cluster named in
    # /tmp/ray/ray_current_cluster, which ray.cluster_utils.Cluster writes (and a killed one leaves
    # behind): with a dead one there, it waited on the GCS for minutes.
    ray.init(address="local", log_to_driver=False)
    try:
        engine = RayEngine(environment=WorkerEnvironment(code_paths=[copy], ignore_file=None), warm_workers=1)
        try:
            engine.start()
        except EnvironmentMismatch as exc:
            print(exc)
        print(f"engine running: {engine.is_running}")
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main(sys.argv[1])
