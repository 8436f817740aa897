"""DaskEngine: the engine contract on a Dask LocalCluster, plus what only Dask promises."""

from __future__ import annotations

import io
import socket
import time
import zipfile

import pytest
from conftest import OnSessionDask, restore_dask_workers
from zoopipe_dask import DaskEngine
from zoopipe_dask.engine import code_archives

from zoopipe_core import plugins
from zoopipe_core.engines import Engine, WorkerEnvironment, WorkerLost
from zoopipe_core.testing import (
    WAIT,
    EngineContract,
    PipeManagerContract,
    import_attribute,
    kill_own_process,
    wait_for,
)


@pytest.fixture
def dask_address(dask_cluster) -> str:
    return dask_cluster.scheduler_address


class TestDaskEngine(OnSessionDask, EngineContract):
    pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_resolve_engine_returns_a_dask_engine():
    engine = plugins.resolve_engine("dask")
    assert isinstance(engine, DaskEngine) and isinstance(engine, Engine)
    assert engine.name == "dask" and not engine.is_running


def test_an_unreachable_address_is_an_error_not_a_local_run():
    address = f"tcp://127.0.0.1:{_free_port()}"
    engine = DaskEngine(address, connect_timeout=2.0)
    began = time.monotonic()
    with pytest.raises(ConnectionError, match=rf"could not reach a Dask scheduler at '{address}'"):
        engine.start()
    assert time.monotonic() - began < 5.0
    assert not engine.is_running and engine.client is None
    with pytest.raises(TypeError, match=r"a scheduler address string or a distributed.Client"):
        DaskEngine(8786)


def test_a_client_is_used_as_given_and_left_open(dask_address):
    from distributed import Client

    with Client(dask_address, set_as_default=False) as client:
        with DaskEngine(client) as engine:
            assert engine.client is client
            assert engine.submit(pow, 2, 10).result(timeout=WAIT) == 1024
        assert client.status == "running"
        assert client.submit(pow, 3, 2).result(timeout=WAIT) == 9


def test_its_own_local_cluster_never_reruns_a_lost_task(tmp_path):
    with DaskEngine(n_workers=2) as engine:
        cluster = engine._cluster
        assert len(engine.client.scheduler_info(n_workers=-1)["workers"]) == 2
        assert engine.client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.allowed_failures) == 0
        victim = engine.submit(kill_own_process, str(tmp_path / "pid"))
        with pytest.raises(WorkerLost, match="Dask did not run it again"):
            victim.result(timeout=WAIT)
        assert engine.submit(pow, 2, 3).result(timeout=WAIT) == 8
    assert cluster.status.name == "closed"


def test_a_package_code_path_is_importable_in_tasks(dask_address, tmp_path):
    package = tmp_path / "zoopipe_dask_test_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("ANSWER = 'from the package'\n")
    with DaskEngine(dask_address) as engine:
        engine.prepare(WorkerEnvironment(code_paths=[str(package)]))
        answer = engine.submit(import_attribute, package.name, "ANSWER")
        assert answer.result(timeout=WAIT) == "from the package"


def test_code_archives_honour_the_ignore_file(tmp_path, monkeypatch):
    code = tmp_path / "code"
    (code / "pkg" / "__pycache__").mkdir(parents=True)
    (code / "pkg" / "__init__.py").write_text("")
    (code / "pkg" / "__pycache__" / "x.pyc").write_bytes(b"")
    (code / "data").mkdir()
    (code / "data" / "big.csv").write_text("a\n")
    (code / "main.py").write_text("")
    (tmp_path / ".rayignore").write_text("# comment\n**/__pycache__/\ndata/*.csv\n")
    monkeypatch.chdir(tmp_path)
    [(name, data)] = code_archives(WorkerEnvironment(code_paths=["code"])).items()
    assert name.startswith("code-") and name.endswith(".zip")
    assert sorted(zipfile.ZipFile(io.BytesIO(data)).namelist()) == ["main.py", "pkg/__init__.py"]
    [(_, data)] = code_archives(WorkerEnvironment(code_paths=["code/pkg"])).items()
    assert zipfile.ZipFile(io.BytesIO(data)).namelist() == ["pkg/__init__.py"]


class TestPipeManagerOnDask(OnSessionDask, PipeManagerContract):
    pass


def test_start_primes_every_worker_and_fails_when_one_cannot_import_zoopipe(dask_address, monkeypatch):
    def native_loaded() -> bool:
        import sys

        return "zoopipe_core._native" in sys.modules

    with DaskEngine(dask_address) as engine:
        assert all(engine.client.run(native_loaded).values())

    def cannot_import(modules: tuple[str, ...] = ()) -> int:  # what priming meets without zoopipe-core
        raise ImportError("No module named 'zoopipe_core'")

    monkeypatch.setattr("zoopipe_dask.engine.prime_worker", cannot_import)
    engine = DaskEngine(dask_address)
    with pytest.raises(RuntimeError, match=r"could not load zoopipe_core in a worker.*No module named"):
        engine.start()
    assert not engine.is_running and engine.client is None


def test_dask_by_name_runs_on_the_current_client_and_leaves_it_open(dask_cluster, tmp_path):
    # As dask.compute does: inside `with Client(...)`, engine="dask" uses that client's
    # cluster. Before, it started a LocalCluster of its own.
    from distributed import Client

    from zoopipe_core import JSONInputAdapter, JSONOutputAdapter, Pipe, PipeManager

    class RecordWorker:  # local: Dask ships it by value
        def __init__(self, path: str) -> None:
            self.path = path

        def __call__(self, records: list) -> list:
            from distributed import get_worker

            with open(self.path, "w") as file:
                file.write(get_worker().address)
            return records

    source = tmp_path / "in.jsonl"
    source.write_text('{"n": 1}\n{"n": 2}\n')
    where = tmp_path / "worker"
    with Client(dask_cluster) as client:
        pipe = Pipe(
            JSONInputAdapter(str(source)),
            JSONOutputAdapter(str(tmp_path / "out.jsonl")),
            post_validation=[RecordWorker(str(where))],
        )
        manager = PipeManager([pipe], engine="dask")
        assert manager.run(show_progress=False).success_count == 2
        assert where.read_text() in client.scheduler_info(n_workers=-1)["workers"]
        assert client.status == "running", "the engine closed the user's client"
        assert client.submit(pow, 3, 2).result(timeout=WAIT) == 9
    assert dask_cluster.status.name == "running"


def test_a_local_cluster_is_started_only_without_a_current_client():
    distributed = pytest.importorskip("distributed")
    engine = DaskEngine()
    assert engine._may_join_current() and DaskEngine._current_client(distributed) is None
    assert not DaskEngine(n_workers=2)._may_join_current(), "LocalCluster options start one"


def test_capacity_is_the_workers_threads_and_tasks_know_their_worker(dask_cluster):
    from zoopipe_core.engines import current_worker

    restore_dask_workers(dask_cluster)
    with DaskEngine(dask_cluster.scheduler_address) as engine:
        assert engine.capacity() == 2  # the session's cluster: 2 workers of 1 thread
        info = engine.submit(current_worker).result(timeout=WAIT)
        workers = engine.client.scheduler_info(n_workers=-1)["workers"]
    assert info.engine == "dask" and info.worker_id in workers
    assert info.host == info.node_id and info.worker_id.split("//")[-1].startswith(info.host)


def _kill_both_workers(engine: DaskEngine, folder, *args) -> list:
    """Submit a task to each worker of the session's 2 that, once both run, kills its worker;
    returns their futures. ``args`` go to the tasks (a shared ref makes them depend on it)."""

    def kill_when_told(folder: str, *args) -> None:  # local: Dask ships it by value
        import os
        import signal
        from pathlib import Path

        for ref in args:
            assert ref.get()
        Path(folder, f"started-{os.getpid()}").touch()
        while not Path(folder, "go").exists():
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGKILL)

    killers = [engine.submit(kill_when_told, str(folder), *args) for _ in range(2)]
    wait_for(lambda: len(list(folder.glob("started-*"))) == 2, "a killer on each worker")
    return killers


def test_a_shared_object_outlives_every_worker_that_held_it(dask_cluster, tmp_path):
    # Scattered data has no recipe: once the workers holding it died, Dask cancelled every task
    # that needed it ("lost dependencies"). The engine scatters it again from the driver.
    def total(ref) -> int:  # local: Dask ships it by value
        return sum(ref.get())

    restore_dask_workers(dask_cluster)
    with DaskEngine(dask_cluster.scheduler_address) as engine:
        ref = engine.share(list(range(100)))
        key = ref.key
        assert engine.submit(total, ref).result(timeout=WAIT) == 4950
        killers = _kill_both_workers(engine, tmp_path)
        (tmp_path / "go").touch()
        for killer in killers:
            with pytest.raises(WorkerLost):
                killer.result(timeout=WAIT)
        restore_dask_workers(dask_cluster)

        def held(dask_scheduler=None) -> bool:
            task = dask_scheduler.tasks.get(key)
            return task is not None and bool(task.who_has)

        assert not engine.client.run_on_scheduler(held), "the cluster still holds the object"
        futures = [engine.submit(total, ref) for _ in range(4)]
        assert [future.result(timeout=WAIT) for future in futures] == [4950] * 4
        assert ref.key == key


def test_a_task_waiting_for_a_lost_shared_object_is_submitted_again(dask_cluster, tmp_path):
    # Both workers die while a task needing the shared object waits for a free thread: Dask
    # cancels it ("already forgotten"), although it never ran; the engine submits it again.
    # The tasks that were running there (and need it too) fail with WorkerLost, never re-run.
    def total(ref) -> int:
        return sum(ref.get())

    restore_dask_workers(dask_cluster)
    with DaskEngine(dask_cluster.scheduler_address) as engine:
        ref = engine.share(list(range(100)))
        killers = _kill_both_workers(engine, tmp_path, ref)
        waiting = engine.submit(total, ref)
        (tmp_path / "go").touch()
        for killer in killers:
            with pytest.raises(WorkerLost):
                killer.result(timeout=WAIT)
        assert waiting.result(timeout=WAIT) == 4950
        assert len(list(tmp_path.glob("started-*"))) == 2, "a killer ran again"
