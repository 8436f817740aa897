"""DaskEngine ships the project's environment with no configuration: code as archives, and
requirements installed once per host by its worker plugin, for workers present and later.

A LocalCluster of its own, whose workers share a fresh install cache (ZOOPIPE_CACHE_DIR); a
requirement is installed from the package index."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from zoopipe_dask import DaskEngine

from zoopipe_core.engines import WorkerEnvironment
from zoopipe_core.testing import WAIT, wait_for
from zoopipe_core.testing.projects import fixture_project, shop_probe

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def env_cluster(tmp_path_factory):
    """Two worker processes on this host, sharing one install cache (inherited from here)."""
    import os

    from distributed import LocalCluster

    cache = tmp_path_factory.mktemp("zoopipe-cache")
    previous = os.environ.get("ZOOPIPE_CACHE_DIR")
    os.environ["ZOOPIPE_CACHE_DIR"] = str(cache)
    try:
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    finally:
        if previous is None:
            del os.environ["ZOOPIPE_CACHE_DIR"]
        else:
            os.environ["ZOOPIPE_CACHE_DIR"] = previous
    cluster.zoopipe_cache = cache
    yield cluster
    cluster.close()


def cowsay_version() -> str:
    import importlib.metadata

    return importlib.metadata.version("cowsay")


def where_it_ran() -> str:
    from distributed import get_worker

    return get_worker().address


def installs(cluster) -> list[str]:
    log = Path(cluster.zoopipe_cache) / "envs" / "installs.log"
    return log.read_text().splitlines() if log.exists() else []


def test_in_this_repository_the_local_cluster_needs_nothing_shipped(env_cluster, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    with DaskEngine(env_cluster.scheduler_address) as engine:
        spec = engine.environment
        assert spec.project_dir == str(REPO_ROOT) and spec.installer == "pip"
        # Its requirements are installed and its packages are the workers' own: nothing to do.
        assert spec.requirements == [] and spec.code_paths == []
        assert engine._plugin_names == [] and engine._resource_tag == ""


def test_a_project_module_ships_with_no_configuration_and_ignored_data_stays_home(
    env_cluster, tmp_path, monkeypatch
):
    root = fixture_project(tmp_path / "shop")
    monkeypatch.chdir(root)
    with (
        DaskEngine(env_cluster.scheduler_address, environment=None) as engine,
        pytest.raises(Exception, match="zoopipe_fixture_shop"),
    ):
        engine.submit(shop_probe()).result(timeout=WAIT)  # turned off: the workers lack it
    with DaskEngine(env_cluster.scheduler_address) as engine:
        assert engine.environment.code_paths == [str(root / "zoopipe_fixture_shop")]
        assert engine.environment.requirements == []  # pluggy is there already
        assert engine.submit(shop_probe()).result(timeout=WAIT) == (42, False, True)


def test_shipped_code_arrives_as_files_so_compiled_modules_and_data_beside_modules_work(
    env_cluster, tmp_path, monkeypatch
):
    # No ignore file: the data file beside the package ships, and is a file on the worker (a
    # compiled module such as zoopipe's own core can only be imported from files, not a zip).
    root = fixture_project(tmp_path / "shop")
    monkeypatch.chdir(tmp_path)
    env = WorkerEnvironment(code_paths=[str(root / "zoopipe_fixture_shop")], ignore_file=None)
    with DaskEngine(env_cluster.scheduler_address, environment=env) as engine:
        assert set(engine.client.run(shop_probe()).values()) == {(42, True, True)}


def test_a_missing_requirement_is_installed_once_per_host_and_cached_for_later_starts(
    env_cluster, tmp_path, monkeypatch
):
    with pytest.raises(ModuleNotFoundError):
        __import__("cowsay")  # absent from the driver's environment
    root = fixture_project(tmp_path / "shop", requirements="pluggy>=1\ncowsay==6.1\n")
    monkeypatch.chdir(root)
    began = time.monotonic()
    with DaskEngine(env_cluster.scheduler_address) as engine:
        first = time.monotonic() - began
        assert engine.environment.requirements == ["cowsay==6.1"]
        # Both worker processes have it; one of them installed it.
        assert set(engine.client.run(cowsay_version).values()) == {"6.1"}
        assert engine.submit(cowsay_version).result(timeout=WAIT) == "6.1"
    assert len(installs(env_cluster)) == 1
    began = time.monotonic()
    with DaskEngine(env_cluster.scheduler_address) as engine:
        cached = time.monotonic() - began
        assert engine.submit(cowsay_version).result(timeout=WAIT) == "6.1"
    assert len(installs(env_cluster)) == 1  # the host's cache: nothing installed again
    assert cached < first


def test_work_stays_off_a_worker_whose_install_failed(env_cluster, tmp_path, monkeypatch, caplog):
    root = fixture_project(tmp_path / "shop", requirements="cowsay==6.1\n")
    monkeypatch.chdir(root)
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    with DaskEngine(env_cluster.scheduler_address, environment=None) as engine:
        broken = sorted(engine.client.scheduler_info()["workers"])[0]

        def set_cache(value: str) -> str | None:
            import os

            previous = os.environ.get("ZOOPIPE_CACHE_DIR")
            os.environ["ZOOPIPE_CACHE_DIR"] = value
            return previous

        [previous] = engine.client.run(set_cache, str(blocker / "cache"), workers=[broken]).values()
    try:
        with (
            caplog.at_level(logging.WARNING, logger="zoopipe_dask.engine"),
            DaskEngine(env_cluster.scheduler_address) as engine,
        ):
            ran = {engine.submit(where_it_ran).result(timeout=WAIT) for _ in range(8)}
            assert broken not in ran and len(ran) == 1
        assert f"worker {broken} could not install the requirements" in caplog.text
        assert "ZOOPIPE_CACHE_DIR" in caplog.text
    finally:
        with DaskEngine(env_cluster.scheduler_address, environment=None) as engine:
            engine.client.run(set_cache, previous, workers=[broken])


def test_a_worker_that_joins_later_gets_the_environment(env_cluster, tmp_path, monkeypatch):
    root = fixture_project(tmp_path / "shop", requirements="cowsay==6.1\n")
    monkeypatch.chdir(root)
    with DaskEngine(env_cluster.scheduler_address) as engine:
        before = set(engine.client.scheduler_info()["workers"])
        env_cluster.scale(3)
        try:
            wait_for(
                lambda: len(engine.client.scheduler_info()["workers"]) == 3, "a third worker", timeout=90
            )
            [joined] = set(engine.client.scheduler_info()["workers"]) - before
            assert engine.client.run(cowsay_version, workers=[joined]) == {joined: "6.1"}
            assert engine.client.run(shop_probe(), workers=[joined])[joined] == (42, False, True)
            tags = engine.client.scheduler_info()["workers"][joined]["resources"]
            assert any(name.startswith("zoopipe-env-") for name in tags)  # it takes the engine's work
        finally:
            env_cluster.scale(2)
            wait_for(
                lambda: len(env_cluster.scheduler_info["workers"]) == 2, "back to two workers", timeout=90
            )


def test_a_requirement_that_cannot_be_installed_fails_start_with_the_installers_message(
    env_cluster, tmp_path, monkeypatch
):
    root = fixture_project(tmp_path / "shop", requirements="zoopipe-surely-not-on-any-index==9.9\n")
    monkeypatch.chdir(root)
    engine = DaskEngine(env_cluster.scheduler_address)
    began = time.monotonic()
    with pytest.raises(RuntimeError) as raised:
        engine.start()
    assert time.monotonic() - began < 180
    message = str(raised.value)
    assert message.startswith("DaskEngine could not prepare its workers' environment: ERROR:")
    assert "zoopipe-surely-not-on-any-index==9.9" in message.splitlines()[0]
    assert "environment=None" in message
    assert not engine.is_running
