"""RayEngine ships the project's environment with no configuration, and only what workers lack
(the session's local Ray; a requirement is installed from the package index)."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from zoopipe_ray import RayEngine
from zoopipe_ray.runtime_env import check_upload_size

from zoopipe_core.engines import WorkerEnvironment
from zoopipe_core.engines.compiled_core import gnu_build_id, native_build
from zoopipe_core.testing import WAIT
from zoopipe_core.testing.projects import fixture_project, shop_probe

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_in_this_repository_the_local_cluster_needs_nothing_shipped(ray_cluster, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    with RayEngine() as engine:
        spec = engine.environment
        assert spec.project_dir == str(REPO_ROOT) and spec.installer == "pip"
        # Its requirements are installed and its packages are the workers' own: nothing to do.
        assert spec.requirements == [] and spec.code_paths == []
        assert engine._runtime_env == {}


def test_a_project_module_ships_with_no_configuration_and_ignored_data_stays_home(
    ray_cluster, tmp_path, monkeypatch
):
    root = fixture_project(tmp_path / "shop")
    monkeypatch.chdir(root)
    with RayEngine(warm_workers=1) as engine:
        assert engine.environment.code_paths == [str(root / "zoopipe_fixture_shop")]
        assert engine.environment.requirements == []  # pluggy is there already
        assert engine.submit(shop_probe()).result(timeout=WAIT) == (42, False, True)
    # Turned off: the workers lack it.
    with (
        RayEngine(environment=None, warm_workers=0) as engine,
        pytest.raises(Exception, match="zoopipe_fixture_shop"),
    ):
        engine.submit(shop_probe()).result(timeout=WAIT)


def test_an_explicit_environment_replaces_the_project(ray_cluster, tmp_path, monkeypatch):
    root = fixture_project(tmp_path / "shop")
    monkeypatch.chdir(tmp_path)
    env = WorkerEnvironment(code_paths=[str(root / "zoopipe_fixture_shop")], env_vars={"ZOOPIPE_MODE": "x"})
    with RayEngine(environment=env, warm_workers=0) as engine:
        assert engine.submit(lambda: __import__("os").environ["ZOOPIPE_MODE"]).result(timeout=WAIT) == "x"
        assert engine.submit(shop_probe()).result(timeout=WAIT)[:2] == (42, True)  # no .rayignore


def test_a_requirement_missing_on_the_workers_is_installed_from_the_index(ray_cluster, tmp_path, monkeypatch):
    pytest.importorskip("ray")
    with pytest.raises(ModuleNotFoundError):
        __import__("cowsay")  # absent from the driver's environment
    root = fixture_project(tmp_path / "shop", requirements="pluggy>=1\ncowsay==6.1\n")
    monkeypatch.chdir(root)

    def cowsay_version() -> str:
        import importlib.metadata

        return importlib.metadata.version("cowsay")

    began = time.monotonic()
    with RayEngine(warm_workers=0) as engine:
        assert engine.environment.requirements == ["cowsay==6.1"]
        assert engine.submit(cowsay_version).result(timeout=300) == "6.1"
    first = time.monotonic() - began
    began = time.monotonic()
    with RayEngine(warm_workers=0) as engine:  # the node's cached environment: no install again
        assert engine.submit(cowsay_version).result(timeout=300) == "6.1"
    cached = time.monotonic() - began
    assert cached < first


def test_code_over_rays_upload_limit_fails_before_contacting_the_cluster(tmp_path, monkeypatch):
    root = fixture_project(tmp_path / "shop")
    (root / ".rayignore").write_text("")  # the 3 MiB data file now ships
    env = WorkerEnvironment.from_project(root, local_packages=False)
    with pytest.raises(ValueError) as raised:
        check_upload_size(env, limit=1024 * 1024)
    message = str(raised.value)
    assert "zoopipe_fixture_shop/data/big.bin (3.0 MiB)" in message
    assert "data/" in message and str(root / ".rayignore") in message
    assert "zoopipe env --explain" in message

    monkeypatch.setattr("zoopipe_ray.runtime_env.ray_package_limit", lambda: 1024 * 1024)
    with socket.socket() as sock:  # nobody listens here: reaching the cluster would be a ConnectionError
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"
    engine = RayEngine(address=address, environment=env, connect_timeout=2.0)
    with pytest.raises(ValueError, match="over Ray's limit"):
        engine.start()
    assert not engine.is_running


def test_a_bad_environment_argument_is_refused_at_once():
    with pytest.raises(ValueError, match="environment='projects'"):
        RayEngine(environment="projects")


@pytest.mark.parametrize("warm_workers", [1, 0])  # readied actors, or the handshake's one task
def test_a_requirement_that_cannot_be_installed_fails_start_with_the_installers_message(
    ray_cluster, tmp_path, monkeypatch, warm_workers
):
    root = fixture_project(tmp_path / "shop", requirements="zoopipe-surely-not-on-any-index==9.9\n")
    monkeypatch.chdir(root)
    engine = RayEngine(warm_workers=warm_workers)
    began = time.monotonic()
    with pytest.raises(RuntimeError) as raised:
        engine.start()
    assert time.monotonic() - began < 180  # Ray's three attempts, not a task pending forever
    message = str(raised.value)
    assert message.startswith("RayEngine could not prepare its workers' environment: ERROR:")
    assert "zoopipe-surely-not-on-any-index==9.9" in message.splitlines()[0]
    assert "environment=None" in message
    assert not engine.is_running


def test_the_users_runtime_env_is_merged_theirs_winning_and_conflicts_reported(ray_cluster, caplog):
    def read(*names: str) -> list[str | None]:
        import os

        return [os.environ.get(name) for name in names]

    ours = WorkerEnvironment(env_vars={"ZOOPIPE_MODE": "ours", "ZOOPIPE_OURS": "1"}, ignore_file=None)
    theirs = {"env_vars": {"ZOOPIPE_MODE": "theirs", "ZOOPIPE_THEIRS": "1"}}
    with (
        caplog.at_level(logging.WARNING, logger="zoopipe_ray.engine"),
        RayEngine(environment=ours, warm_workers=0, runtime_env=theirs) as engine,
    ):
        names = ("ZOOPIPE_MODE", "ZOOPIPE_OURS", "ZOOPIPE_THEIRS")
        assert engine.submit(read, *names).result(timeout=WAIT) == ["theirs", "1", "1"]
    assert "'ZOOPIPE_MODE': yours ('theirs') is used; the project's ('ours') is not" in caplog.text


def another_build_of_zoopipe_core(destination: Path) -> Path:
    """A copy of this zoopipe_core whose compiled core carries another GNU build id (the same
    code: what a rebuild of the same version looks like)."""

    from zoopipe_core.engines.compiled_core import gnu_build_id, native_build

    mine = native_build()
    package = Path(mine.path).parent
    copy = destination / "zoopipe_core"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    native = copy / Path(mine.path).name
    data = bytearray(native.read_bytes())
    at = data.find(bytes.fromhex(mine.build_id))
    data[at] ^= 0xFF
    native.write_bytes(bytes(data))
    assert gnu_build_id(native) not in (None, mine.build_id)
    return destination


def test_workers_importing_another_zoopipe_build_fail_start_with_a_table(tmp_path):
    # A Ray of its own, started from a directory without zoopipe in it: Ray puts the driver's working
    # directory first on the workers' import path, and the session's cluster was started in the repository.
    other = another_build_of_zoopipe_core(tmp_path / "other") / "zoopipe_core"
    run = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "handshake_main.py"), str(other)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    message = run.stdout
    assert "RayEngine: workers run another zoopipe build than this driver" in message
    row = next(line for line in message.splitlines() if "zoopipe_core._native build" in line)
    assert native_build().build_id in row and gnu_build_id(other / Path(native_build().path).name) in row
    assert "install the same zoopipe-core wheel on the workers" in message
    assert "engine running: False" in message


def test_new_workers_that_do_not_answer_start_in_time_are_a_timeout_error_that_says_so(ray_cluster):
    import ray

    def sleep(seconds: float) -> None:
        time.sleep(seconds)

    slow = ray.remote(num_cpus=0, max_retries=0)(sleep)
    with pytest.raises(TimeoutError, match=r"1 of 1 new worker\(s\) did not answer within 0.5 s of start"):
        RayEngine._get_started(ray, [slow.remote(10)], timeout=0.5)
