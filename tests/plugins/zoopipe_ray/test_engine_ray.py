"""RayEngine: the engine contract on a local Ray, plus what only Ray promises."""

from __future__ import annotations

import concurrent.futures
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from zoopipe_ray import RayEngine
from zoopipe_ray.engine import runtime_env_for

from zoopipe_core import plugins
from zoopipe_core.engines import Engine, WorkerEnvironment
from zoopipe_core.testing import (
    WAIT,
    EngineContract,
    PipeManagerContract,
    ignore_stop_requests,
    touch,
    wait_for,
    wait_for_flag,
)


@pytest.mark.usefixtures("ray_cluster")
class TestRayEngine(EngineContract):
    def make_engine(self) -> RayEngine:
        return RayEngine()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_resolve_engine_returns_a_ray_engine():
    engine = plugins.resolve_engine("ray")
    assert isinstance(engine, RayEngine) and isinstance(engine, Engine)
    assert engine.name == "ray" and not engine.is_running


def test_an_unreachable_address_is_an_error_not_a_local_run():
    address = f"127.0.0.1:{_free_port()}"
    engine = RayEngine(address=address, connect_timeout=2.0)
    began = time.monotonic()
    with pytest.raises(ConnectionError, match=rf"could not reach a Ray cluster at '{address}'"):
        engine.start()
    assert time.monotonic() - began < 5.0
    assert not engine.is_running
    with pytest.raises(ValueError, match="is not 'host:port'"):
        RayEngine(address="no-port-here")


def test_tasks_request_num_cpus_and_memory(ray_cluster, tmp_path):
    def assigned_resources() -> dict[str, float]:  # a closure: Ray ships it by value
        import ray

        return dict(ray.get_runtime_context().get_assigned_resources())

    with RayEngine(num_cpus=2, memory=256 * 1024**2) as engine:
        resources = engine.submit(assigned_resources).result(timeout=WAIT)
        assert resources == {"CPU": 2.0, "memory": 256.0 * 1024**2}
        # The cluster has 2 CPUs: a second 2-CPU task waits until the first one ends.
        started, release = str(tmp_path / "started"), str(tmp_path / "release")
        first = engine.submit(wait_for_flag, started, release)
        wait_for(lambda: (tmp_path / "started").exists(), "the first task to start")
        second = engine.submit(assigned_resources)
        done, _ = concurrent.futures.wait([second], timeout=1.0)
        assert not done, "a task needing 2 CPUs ran beside another one on a 2-CPU cluster"
        touch(release)
        assert first.result(timeout=WAIT) == "released"
        assert second.result(timeout=WAIT)["CPU"] == 2.0


def test_a_package_code_path_ships_as_a_py_module(ray_cluster, tmp_path):
    package = tmp_path / "zoopipe_ray_test_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("ANSWER = 'from the package'\n")
    single = tmp_path / "zoopipe_ray_test_single.py"
    single.write_text("ANSWER = 'from the module'\n")
    from zoopipe_core.testing import import_attribute

    with RayEngine() as engine:
        engine.prepare(WorkerEnvironment(code_paths=[str(package), str(single)]))
        package_answer = engine.submit(import_attribute, package.name, "ANSWER")
        module_answer = engine.submit(import_attribute, single.stem, "ANSWER")
        assert package_answer.result(timeout=WAIT) == "from the package"
        assert module_answer.result(timeout=WAIT) == "from the module"


def test_runtime_env_maps_the_worker_environment(tmp_path, monkeypatch):
    (tmp_path / "plain").mkdir()
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "tool.py").write_text("")
    (tmp_path / ".rayignore").write_text("# comment\n.git/\ndata/*.csv\n")
    monkeypatch.chdir(tmp_path)
    env = WorkerEnvironment(
        requirements=["attrs==24.2.0"],
        code_paths=["plain", "pkg", "tool.py"],
        env_vars={"MODE": "fast"},
    )
    assert runtime_env_for(env) == {
        "pip": ["attrs==24.2.0"],
        "working_dir": str(tmp_path / "plain"),
        "py_modules": [str(tmp_path / "pkg"), str(tmp_path / "tool.py")],
        "env_vars": {"MODE": "fast"},
    }
    uv = WorkerEnvironment(requirements=["attrs"], installer="uv", ignore_file=None)
    assert runtime_env_for(uv) == {"uv": ["attrs"]}
    assert runtime_env_for(WorkerEnvironment(requirements=["attrs"], installer="manual")) == {}
    (tmp_path / "other").mkdir()
    with pytest.raises(ValueError, match=r"one plain directory.*add __init__.py"):
        runtime_env_for(WorkerEnvironment(code_paths=["plain", "other"]))


def test_a_shared_object_is_released_at_shutdown(ray_cluster):
    with RayEngine() as engine:
        ref = engine.share(list(range(1000)))
        assert engine.submit(lambda r: sum(r.get()), ref).result(timeout=WAIT) == 499500
    with pytest.raises(LookupError, match="was shut down"):
        ref.get()


def test_joining_a_running_ray_leaves_it_running(ray_cluster):
    import ray

    engine = RayEngine()
    engine.start()
    engine.shutdown()
    assert ray.is_initialized()


@pytest.mark.usefixtures("ray_cluster")
class TestPipeManagerOnRay(PipeManagerContract):
    def make_engine(self) -> RayEngine:
        return RayEngine()


def _pipe_actors() -> set[str]:
    import ray

    return {name for name in ray.util.list_named_actors() if name.startswith("zoopipe-pipe-")}


def test_start_readies_pipe_actors_and_fails_when_they_cannot_import_zoopipe(ray_cluster, monkeypatch):
    def native_loaded() -> bool:  # a closure: Ray ships it by value
        import sys

        return "zoopipe_core._native" in sys.modules

    assert not _pipe_actors()
    with RayEngine(warm_workers=2) as engine:
        readied = _pipe_actors()
        assert len(readied) == 2
        # The first pipes take them, with zoopipe already loaded; each is killed when done.
        futures = [engine.submit_dedicated(native_loaded) for _ in range(2)]
        assert all(f.result(timeout=WAIT) for f in futures)
        wait_for(lambda: not _pipe_actors(), "the readied actors to end with their pipes")

    with RayEngine(warm_workers=2) as engine:
        readied = _pipe_actors()
        assert len(readied) == 2
        # Plain tasks run on them while they wait (their workers are up and hold the CPUs);
        # then a pipe still takes one that is idle.
        assert [f.result(timeout=WAIT) for f in [engine.submit(pow, 2, n) for n in range(6)]] == [
            1,
            2,
            4,
            8,
            16,
            32,
        ]
        assert _pipe_actors() == readied
        assert engine.submit_dedicated(native_loaded).result(timeout=WAIT)
        wait_for(lambda: len(_pipe_actors()) == 1, "the pipe's actor to end with it")

    with RayEngine(warm_workers=1) as engine:
        assert len(_pipe_actors()) == 1
        # They run the previous environment: a new one releases them.
        engine.prepare(WorkerEnvironment(env_vars={"ZOOPIPE_TEST": "1"}))
        assert not _pipe_actors()
        assert (
            engine.submit_dedicated(lambda: __import__("os").environ["ZOOPIPE_TEST"]).result(timeout=WAIT)
            == "1"
        )

    monkeypatch.setattr("zoopipe_ray.engine.WARM_ACTOR_IDLE", 0.2)
    with RayEngine(warm_workers=1):
        wait_for(lambda: not _pipe_actors(), "an unused readied actor to be released")

    def cannot_import(modules: tuple[str, ...] = ()) -> int:  # what priming meets without zoopipe-core
        raise ImportError("No module named 'zoopipe_core'")

    monkeypatch.setattr("zoopipe_ray.engine.prime_worker", cannot_import)
    engine = RayEngine(warm_workers=1)
    with pytest.raises(RuntimeError, match=r"could not load zoopipe_core in a worker.*No module named"):
        engine.start()
    assert not engine.is_running
    with pytest.raises(ValueError, match="warm_workers"):
        RayEngine(warm_workers=-1)


def test_start_right_after_other_tasks_readies_an_actor_per_cpu(ray_cluster):
    """Ray shows a finished task's CPU as free only a moment later: start() must not read that
    moment as a busy cluster and ready no actor (every first call would then wait for a worker)."""
    import ray

    wait_for(lambda: not _pipe_actors(), "earlier tests' actors to end")
    wait_for(lambda: ray.available_resources().get("CPU", 0) == 2, "both CPUs to be free")

    def square(x: int) -> int:
        return x * x

    ray.get([ray.remote(square).remote(n) for n in range(2)])
    with RayEngine() as engine:
        assert len(engine._ready_actors) == 2


def test_free_cpus_waits_for_leases_of_ended_tasks_only_briefly(monkeypatch):
    from zoopipe_ray import engine as engine_module

    class FakeRay:
        def __init__(self, free: list[float]) -> None:
            self.free = free

        def cluster_resources(self) -> dict[str, float]:
            return {"CPU": 2.0}

        def available_resources(self) -> dict[str, float]:
            return {"CPU": self.free.pop(0)} if len(self.free) > 1 else {"CPU": self.free[0]}

    assert engine_module._free_cpus(FakeRay([0.0, 0.0, 1.0, 2.0])) == 2.0
    monkeypatch.setattr(engine_module, "LEASE_SETTLE_SECONDS", 0.05)
    began = time.monotonic()
    assert engine_module._free_cpus(FakeRay([1.0])) == 1.0  # busy elsewhere: it readies fewer
    assert time.monotonic() - began < 1.0


def _actor_pids(engine: RayEngine) -> set[int]:
    import ray

    return set(ray.get([actor.prime.remote() for _, actor in engine._ready_actors]))


def test_submit_runs_on_the_readied_actors_and_a_crash_loses_only_the_running_call(ray_cluster):
    import os

    from zoopipe_core.engines import WorkerLost
    from zoopipe_core.testing.map_tasks import kill_worker_on

    with RayEngine(warm_workers=2) as engine:
        pids = _actor_pids(engine)
        assert {engine.submit(os.getpid).result(timeout=WAIT) for _ in range(4)} <= pids
        # Two calls per actor: each crash kills the call running on its actor; the calls
        # queued behind them never ran, so they run again elsewhere and succeed.
        futures = [engine.submit(kill_worker_on, x, 0) for x in (0, 1, 0, 1)]
        outcomes = [f.exception(timeout=WAIT) or f.result() for f in futures]
        assert [type(o) for o in outcomes] == [WorkerLost, int, WorkerLost, int]
        assert outcomes[1] == outcomes[3] == 1
        assert "actor zoopipe-pipe-" in str(outcomes[0])
        assert not engine._ready_actors  # both died: later calls are tasks
        assert engine.submit(pow, 3, 2).result(timeout=WAIT) == 9


def test_readied_actors_load_the_modules_the_driver_asked_for(ray_cluster):
    import zoopipe_core.parallel.map  # noqa: F401  (it asks for its worker module)

    def loaded() -> bool:  # a closure: Ray ships it by value, importing nothing
        import sys

        return "zoopipe_core.parallel.map.worker" in sys.modules

    with RayEngine(warm_workers=1) as engine:
        assert engine.submit(loaded).result(timeout=WAIT)


def test_a_stuck_pooled_call_is_killed_and_the_calls_behind_it_still_run(ray_cluster, tmp_path):
    from zoopipe_core.testing.map_tasks import hang_on

    with RayEngine(warm_workers=2) as engine:  # they hold both CPUs: calls queue on them
        assert engine._pool_covers_cluster
        engine.cancel_grace = 0.5
        first_actor = engine._ready_actors[0][0]
        started, release = str(tmp_path / "started"), str(tmp_path / "release")
        stuck = engine.submit(ignore_stop_requests, started)  # only a kill stops it
        blocker = engine.submit(wait_for_flag, str(tmp_path / "started-2"), release)
        behind = engine.submit(hang_on, 7)  # queued behind the stuck call
        assert engine._pool_calls[first_actor][1].future is behind
        wait_for(lambda: Path(started).exists(), "the first call to start")
        assert engine.cancel(stuck)
        wait_for(lambda: first_actor not in _pipe_actors(), "the stuck call's actor to be killed")
        touch(release)
        assert blocker.result(timeout=WAIT) == "released"
        assert behind.result(timeout=WAIT) == 7  # ran again, on the other actor
        assert stuck.cancelled()


def test_calls_wait_on_the_driver_not_behind_a_long_call_while_another_actor_has_room(ray_cluster, tmp_path):
    from zoopipe_ray.engine import POOL_DEPTH

    from zoopipe_core.testing.map_tasks import square

    with RayEngine(warm_workers=2) as engine:  # they hold both CPUs: calls queue on them
        assert engine._pool_covers_cluster and POOL_DEPTH == 2
        started, release = str(tmp_path / "started"), str(tmp_path / "release")
        long_call = engine.submit(wait_for_flag, started, release)
        wait_for(lambda: Path(started).exists(), "the long call to start")
        shorts = [engine.submit(square, x) for x in range(8)]
        # One short call is queued on the long call's actor (so that actor never waits for the
        # driver); the other seven run on the other actor while the long call still runs. Queued
        # by count (round robin), four would wait for the long call.
        assert sum(len(calls) for calls in engine._pool_calls.values()) <= 2 * POOL_DEPTH
        wait_for(lambda: sum(f.done() for f in shorts) >= 7, "seven short calls to end beside the long one")
        assert not long_call.done()
        touch(release)
        assert long_call.result(timeout=WAIT) == "released"
        assert [f.result(timeout=WAIT) for f in shorts] == [x * x for x in range(8)]
        assert not engine._backlog and not any(engine._pool_calls.values())


def test_a_cancelled_call_waiting_on_the_driver_never_runs(ray_cluster, tmp_path):
    with RayEngine(warm_workers=2) as engine:
        release = str(tmp_path / "release")
        holding = [engine.submit(wait_for_flag, str(tmp_path / f"started-{n}"), release) for n in range(4)]
        waiting = engine.submit(touch, str(tmp_path / "ran"))
        assert engine._backlog[0].future is waiting  # both actors hold POOL_DEPTH calls
        assert engine.cancel(waiting) and waiting.cancelled()
        assert not engine._backlog
        touch(release)
        assert [f.result(timeout=WAIT) for f in holding] == ["released"] * 4
        assert not Path(tmp_path / "ran").exists()


def test_with_cpus_beside_the_readied_actors_a_call_never_waits_behind_another(ray_cluster, tmp_path):
    import os

    with RayEngine(warm_workers=1) as engine:  # one of the two CPUs stays free
        assert not engine._pool_covers_cluster
        [actor_pid] = _actor_pids(engine)
        started, release = str(tmp_path / "started"), str(tmp_path / "release")
        running = engine.submit(wait_for_flag, started, release)
        wait_for(lambda: Path(started).exists(), "the first call to start on the readied actor")
        assert engine.submit(os.getpid).result(timeout=WAIT) != actor_pid  # a task, at once
        touch(release)
        assert running.result(timeout=WAIT) == "released"


def test_readied_actors_busy_at_prepare_take_no_more_calls_and_end_with_theirs(ray_cluster, tmp_path):
    with RayEngine(warm_workers=1) as engine:
        [(actor_name, _)] = engine._ready_actors
        started, release = str(tmp_path / "started"), str(tmp_path / "release")
        running = engine.submit(wait_for_flag, started, release)
        wait_for(lambda: Path(started).exists(), "the call to start")
        engine.prepare(WorkerEnvironment(env_vars={"ZOOPIPE_TEST": "2"}))
        assert actor_name in _pipe_actors()  # not killed under its running call
        assert engine.submit(lambda: __import__("os").environ["ZOOPIPE_TEST"]).result(timeout=WAIT) == "2"
        touch(release)
        assert running.result(timeout=WAIT) == "released"
        wait_for(lambda: actor_name not in _pipe_actors(), "the released actor to end after its call")


def test_calls_waiting_for_readied_actors_released_by_prepare_run_as_tasks_in_the_new_environment(
    ray_cluster, tmp_path
):
    def read_setting() -> str | None:
        import os

        return os.environ.get("ZOOPIPE_TEST")

    with RayEngine(warm_workers=2) as engine:
        release = str(tmp_path / "release")
        holding = [engine.submit(wait_for_flag, str(tmp_path / f"started-{n}"), release) for n in range(4)]
        waiting = [engine.submit(read_setting) for _ in range(3)]
        assert [task.future for task in engine._backlog] == waiting
        engine.prepare(WorkerEnvironment(env_vars={"ZOOPIPE_TEST": "2"}))
        assert not engine._backlog
        touch(release)  # the actors' CPUs free up as their calls end: the tasks run then
        assert [f.result(timeout=WAIT) for f in waiting] == ["2"] * 3
        assert [f.result(timeout=WAIT) for f in holding] == ["released"] * 4


# --------------------------------------------------------------------------- pipes in actors


def _users_csv(path, count: int) -> str:
    rows = "".join(f"{n},user{n},u{n}@x.io\n" for n in range(count))
    path.write_text("user_id,username,email\n" + rows)
    return str(path)


def _csv_pipe(source: str, out: str, transforms: list) -> Any:
    from zoopipe_core import CSVInputAdapter, CSVOutputAdapter, Pipe, SingleThreadExecutor
    from zoopipe_core.testing import UserSchema

    return Pipe(
        CSVInputAdapter(source),
        CSVOutputAdapter(out),
        schema_model=UserSchema,
        post_validation=transforms,
        executor=SingleThreadExecutor(batch_size=50),
    )


def test_a_pipe_runs_in_its_own_ray_pipe_worker_actor_which_ends_with_it(ray_cluster, tmp_path):
    import json

    import ray
    from ray._private import state  # the GCS actor table; ray.util.state needs the dashboard

    from zoopipe_core import PipeManager

    class RecordWhere:  # local: Ray ships it by value
        def __init__(self, path: str) -> None:
            self.path = path

        def __call__(self, records: list) -> list:
            import ray

            context = ray.get_runtime_context()
            Path(self.path).write_text(
                json.dumps(
                    {
                        "actor_id": context.get_actor_id(),
                        "actor_name": context.get_actor_name(),
                        "resources": dict(context.get_assigned_resources()),
                    }
                )
            )
            return records

    where = tmp_path / "where.json"
    pipe = _csv_pipe(
        _users_csv(tmp_path / "users.csv", 20), str(tmp_path / "out.csv"), [RecordWhere(str(where))]
    )
    with RayEngine(num_cpus=1, memory=300 * 1024**2, warm_workers=1) as engine:
        report = PipeManager([pipe], engine=engine).run(show_progress=False)
        assert report.success_count == 20 and not report.has_error
        seen = json.loads(where.read_text())
        assert seen["actor_id"] is not None, "the pipe ran in a task, not in an actor"
        assert seen["actor_name"].startswith("zoopipe-pipe-")
        assert seen["resources"] == {"CPU": 1.0, "memory": 300.0 * 1024**2}
        actor = state.actors(seen["actor_id"])
        assert actor["ActorClassName"] == "RayPipeWorker"
        # Killed once the pipe finished, while the engine still runs: its resources are free.
        wait_for(lambda: state.actors(seen["actor_id"])["State"] == "DEAD", "the pipe's actor to be killed")
        assert seen["actor_name"] not in ray.util.list_named_actors()
        # The pipe took the one readied actor: with none left waiting, a plain submit is a Ray task.
        assert engine.submit(lambda: ray.get_runtime_context().get_actor_id()).result(timeout=WAIT) is None


def test_killing_a_shards_actor_reruns_that_shard_and_every_record_arrives_once(
    ray_cluster, tmp_path, caplog
):
    import logging

    import ray

    from zoopipe_core import PipeManager
    from zoopipe_core.engines import WorkerLost
    from zoopipe_core.testing import read_lines

    class SlowAndNamed:  # local: Ray ships it by value
        """Takes 0.1 s a batch; the shard holding user 0 records its actor's name."""

        def __init__(self, name_file: str) -> None:
            self.name_file = name_file

        def __call__(self, records: list) -> list:
            import time

            import ray

            if any(record["user_id"] == 0 for record in records):
                Path(self.name_file).write_text(ray.get_runtime_context().get_actor_name())
            time.sleep(0.1)
            return records

    source = _users_csv(tmp_path / "users.csv", 2000)  # 2 shards of 20 batches: about 2 s each
    out = str(tmp_path / "out.csv")
    name_file = tmp_path / "shard0-actor"
    engine = RayEngine()
    manager = PipeManager.parallelize_pipe(
        _csv_pipe(source, out, [SlowAndNamed(str(name_file))]),
        workers=2,
        should_merge=True,
        engine=engine,
        retries=1,
    )
    assert manager.pipe_count == 2
    caplog.set_level(logging.WARNING, logger="zoopipe")
    manager.start()
    try:
        name = wait_for(lambda: name_file.exists() and name_file.read_text(), "shard 0 to start in its actor")
        wait_for(lambda: manager.get_pipe_report(0).total_processed > 0, "progress from shard 0")
        assert not manager.get_pipe_report(0).is_finished
        ray.kill(ray.get_actor(name))
        assert manager.wait(WAIT)
    finally:
        manager.shutdown()
        engine.shutdown()  # the manager leaves an engine it was given running
    report = manager.report
    assert not report.has_error and report.success_count == 2000, report
    reruns = [r for r in caplog.records if "running it again" in r.getMessage()]
    assert len(reruns) == 1, [r.getMessage() for r in reruns]
    index, attempt, _, error = reruns[0].args
    assert (index, attempt) == (0, 1)
    assert isinstance(error, WorkerLost), repr(error)
    assert name in str(error) and "ActorDiedError" in str(error)
    assert name_file.read_text() != name, "the rerun ran in a new actor"
    lines = read_lines(out)
    assert lines[0] == "user_id,username,email"
    assert sorted(int(line.split(",")[0]) for line in lines[1:]) == list(range(2000))


def test_one_engine_object_serves_several_managers_and_starts_once(ray_cluster, tmp_path, monkeypatch):
    # Before: each manager started the engine it was given and shut it down after its run, so
    # every manager paid for a new start (17-24 s each for a local Ray on this machine).
    import ray

    from zoopipe_core import PipeManager

    starts = []
    real_start = RayEngine._start
    monkeypatch.setattr(RayEngine, "_start", lambda self: (starts.append(1), real_start(self)))
    source = _users_csv(tmp_path / "users.csv", 20)
    engine = RayEngine(warm_workers=0)
    try:
        for n in range(2):
            manager = PipeManager([_csv_pipe(source, str(tmp_path / f"out{n}.csv"), [])], engine=engine)
            assert manager.run(show_progress=False).success_count == 20
            assert engine.is_running, "a manager shut down an engine it was given"
        assert len(starts) == 1, f"the engine started {len(starts)} times for 2 managers"
    finally:
        engine.shutdown()
    assert ray.is_initialized(), "the engine shut down a Ray it had joined"


def test_ray_by_name_joins_the_initialised_ray_and_leaves_it_up(ray_cluster, tmp_path):
    import ray

    from zoopipe_core import PipeManager

    class RecordCluster:  # local: Ray ships it by value
        def __init__(self, path: str) -> None:
            self.path = path

        def __call__(self, records: list) -> list:
            import ray

            Path(self.path).write_text(ray.get_runtime_context().gcs_address)
            return records

    where = tmp_path / "gcs"
    source = _users_csv(tmp_path / "users.csv", 20)
    manager = PipeManager(
        [_csv_pipe(source, str(tmp_path / "out.csv"), [RecordCluster(str(where))])], engine="ray"
    )
    assert manager.run(show_progress=False).success_count == 20
    assert where.read_text() == ray_cluster, "the pipe ran on another Ray cluster"
    assert not manager.engine.is_running, "the manager shuts down the engine it created"
    assert ray.is_initialized() and ray.get_runtime_context().gcs_address == ray_cluster
    assert ray.get(ray.put(7)) == 7, "the user's Ray connection was shut down"


def test_a_local_ray_is_started_without_the_dashboard_unless_asked(monkeypatch):
    # Measured in docs/benchmarks.md: the dashboard's modules cost a local start seconds.
    import ray

    calls: list[dict[str, Any]] = []

    def fake_init(**kwargs: Any) -> None:
        calls.append(kwargs)
        raise ConnectionError("not starting Ray in this test")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", fake_init)
    for engine in (RayEngine(), RayEngine(include_dashboard=True), RayEngine(address="auto")):
        with pytest.raises(ConnectionError):
            engine.start()
    assert [call.get("include_dashboard") for call in calls] == [False, True, None]


def test_capacity_is_the_clusters_cpus_over_num_cpus_and_tasks_know_their_node(ray_cluster):
    import ray

    from zoopipe_core.engines import current_worker

    # The session's Ray has 2 CPUs.
    for num_cpus, capacity in ((1, 2), (2, 1), (0.5, 4)):
        with RayEngine(num_cpus=num_cpus, warm_workers=0) as engine:
            assert engine.capacity() == capacity, num_cpus
    with RayEngine(warm_workers=0) as engine:
        task = engine.submit(current_worker).result(timeout=WAIT)
        pipe = engine.submit_dedicated(current_worker).result(timeout=WAIT)
    node = ray.get_runtime_context().get_node_id()
    assert (task.engine, task.node_id, pipe.node_id) == ("ray", node, node)
    assert task.worker_id != pipe.worker_id, "a dedicated call runs in its own actor's worker"


def _process_ended(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in state  # a zombie has ended; its parent has not reaped it yet


def test_stops_reach_plain_tasks_without_ray_cancel(ray_cluster, tmp_path, monkeypatch):
    """ray.cancel of a task can abort this driver when it races the task's reply (Ray 2.60:
    "Tried to complete task that was not pending"), so the engine stops tasks through its sink:
    a polite stop, then after cancel_grace the end of a worker that ignores it."""
    import ray

    from zoopipe_core.testing.map_tasks import run_until_stopped

    cancels: list[Any] = []
    monkeypatch.setattr(ray, "cancel", lambda *args, **kwargs: cancels.append(args))

    def deaf_to_stops(pid_file: str) -> None:
        import os
        import time

        with open(pid_file + ".tmp", "w") as out:
            out.write(str(os.getpid()))
        os.replace(pid_file + ".tmp", pid_file)
        while True:
            try:  # noqa: SIM105 - a with block could let a stop request escape from its exit
                time.sleep(0.05)
            except BaseException:
                pass

    pid_file = tmp_path / "deaf.pid"
    with RayEngine(warm_workers=0) as engine:
        engine.cancel_grace = 0.5
        polite = engine.submit(run_until_stopped, str(tmp_path), 1)
        deaf = engine.submit(deaf_to_stops, str(pid_file))
        wait_for(lambda: (tmp_path / "started-1").exists() and pid_file.exists(), "both tasks to start")
        assert engine.cancel(polite) and engine.cancel(deaf)
        wait_for(lambda: (tmp_path / "stopped-1").exists(), "the cancelled task to stop")
        pid = int(pid_file.read_text())
        wait_for(lambda: _process_ended(pid), "the worker of the task that ignores stops to end")
        assert engine.submit(int, "3").result(timeout=WAIT) == 3
    assert cancels == []
