"""RayMap: ray-map's API on the session's local Ray, and how it starts Ray when none runs."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest
from zoopipe_ray import RayEngine, RayMap

from zoopipe_core import ParallelMap
from zoopipe_core.testing import WAIT


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Functions are closures made in the tests: Ray ships them by value (a module-level function of
# this test module would be pickled by reference, and the test folder is not on the workers' path).


def test_map_and_imap_keep_order_ret_args_and_safe_exceptions(ray_cluster):
    import ray

    def risky(x: int) -> int:
        if x == 3:
            raise ValueError(f"oops at {x}")
        return x * x

    with RayMap(risky, batch_size=2) as rmap:
        assert isinstance(rmap, ParallelMap)
        assert rmap.map([0, 1, 2, 4]) == [0, 1, 4, 16]
        assert list(rmap.imap(range(3), ret_args=True)) == [(0, 0), (1, 1), (2, 4)]
        results = rmap.map(range(6), safe_exceptions=True)
        assert results[:3] == [0, 1, 4] and results[4:] == [16, 25]
        assert isinstance(results[3], ValueError) and str(results[3]) == "oops at 3"
        as_ready = rmap.map(range(6), safe_exceptions=True, keep_order=False, ret_args=True)
        assert sorted(arg for arg, _ in as_ready) == list(range(6))
        with pytest.raises(ValueError, match="oops at 3"):
            rmap.map(range(6))
        assert asyncio.run(rmap.map_async(range(3))) == [0, 1, 4]
    # It joined the session's Ray and left it up.
    assert ray.is_initialized()
    assert ray.get_runtime_context().gcs_address == ray_cluster


def test_ray_is_joined_on_the_first_call_not_in_init(ray_cluster):
    rmap = RayMap(abs)
    assert not rmap.engine.is_running
    assert rmap.map([-1, -2]) == [1, 2]
    assert rmap.engine.is_running
    rmap.close()
    assert not rmap.engine.is_running
    assert rmap.map([-3]) == [3]  # usable again after close
    rmap.close()


def test_remote_options_reach_the_tasks_and_size_capacity(ray_cluster):
    def assigned(_: Any) -> dict[str, float]:
        import ray

        return dict(ray.get_runtime_context().get_assigned_resources())

    with RayMap(assigned) as rmap:
        assert rmap.map([0]) == [{"CPU": 1.0}]  # ray-map's default: one CPU, no memory request
        assert rmap.engine.capacity() == 2
    with RayMap(assigned, remote_options={"num_cpus": 0.5, "memory": 64 * 1024**2}) as rmap:
        assert rmap.map([0]) == [{"CPU": 0.5, "memory": 64.0 * 1024**2}]
        assert rmap.engine.capacity() == 4  # 2 CPUs / 0.5 per task


def test_remote_options_reach_tasks_and_pipe_actors_of_a_ray_engine(ray_cluster):
    def assigned() -> dict[str, float]:
        import ray

        return dict(ray.get_runtime_context().get_assigned_resources())

    with RayEngine(memory=None, warm_workers=0, remote_options={"num_cpus": 0.5}) as engine:
        assert engine.submit(assigned).result(timeout=WAIT) == {"CPU": 0.5}
        assert engine.submit_dedicated(assigned).result(timeout=WAIT) == {"CPU": 0.5}


def test_bad_remote_options_fail_clearly(ray_cluster):
    with pytest.raises(ValueError, match="cannot set 'max_retries'"):
        RayMap(abs, remote_options={"max_retries": 3})
    with pytest.raises(TypeError, match="must be a dict of Ray options"):
        RayMap(abs, remote_options=[("num_cpus", 1)])  # type: ignore[arg-type]
    rmap = RayMap(abs, remote_options={"num_cpu": 1})
    with pytest.raises(ValueError, match="Invalid option keyword num_cpu"):
        rmap.map([1])  # Ray checks the options when RayMap starts, before any task
    assert not rmap.engine.is_running


def test_runtime_env_given_when_ray_is_already_running_is_reported(ray_cluster, caplog):
    with (
        caplog.at_level(logging.WARNING, logger="zoopipe_ray.raymap"),
        RayMap(abs, runtime_env={"env_vars": {"X": "1"}}) as rmap,
    ):
        assert rmap.map([-1]) == [1]
    assert "runtime_env={'env_vars': {'X': '1'}} is not used" in caplog.text


def test_an_unreachable_address_is_a_connection_error_from_the_first_call():
    address = f"127.0.0.1:{_free_port()}"
    rmap = RayMap(abs, address=address, connect_timeout=2.0)  # nothing is contacted yet
    began = time.monotonic()
    with pytest.raises(ConnectionError, match=rf"could not reach a Ray cluster at '{address}'"):
        rmap.map([1, 2])
    assert time.monotonic() - began < 5.0
    assert not rmap.engine.is_running
    with pytest.raises(ValueError, match="is not 'host:port'"):
        RayMap(abs, address="no-port-here")


# A process without Ray: RayMap starts it with its runtime_env, and never shuts it down.
_STARTS_RAY = textwrap.dedent(
    """
    import gc, os
    import ray
    from zoopipe_ray import RayMap

    def read_x(_):
        return os.environ.get("X")

    rmap = RayMap(read_x, runtime_env={"env_vars": {"X": "1"}})
    assert not ray.is_initialized(), "RayMap started Ray in __init__"
    assert rmap.map(range(3)) == ["1", "1", "1"]
    assert ray.is_initialized()
    address = ray.get_runtime_context().gcs_address
    rmap.close()
    assert ray.is_initialized(), "close() shut Ray down"
    del rmap
    gc.collect()
    assert ray.is_initialized(), "garbage collection shut Ray down"
    again = RayMap(read_x)  # joins the Ray the first one started
    assert again.map([0]) == ["1"]
    assert ray.get_runtime_context().gcs_address == address
    print("ok")
    """
)


def test_raymap_starts_ray_with_its_runtime_env_and_never_shuts_it_down(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "X")}
    done = subprocess.run(
        [sys.executable, "-c", _STARTS_RAY],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]
