"""What workers have and still need: gather_facts, needed_environment, the version guards and the
build handshake (no cluster: the facts of this process, and facts as a node would report them)."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import pytest

from zoopipe_core.engines import (
    EnvironmentMismatch,
    NativeBuild,
    WorkerEnvironment,
    check_builds,
    code_checks,
    driver_facts,
    gather_facts,
    native_build,
    needed_environment,
    plan_environment,
    startup_environment,
    zoopipe_code_paths,
)
from zoopipe_core.engines.compiled_core import gnu_build_id


def project(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    (root / "shop").mkdir(parents=True)
    (root / "requirements.txt").write_text("pluggy>=1\n")
    (root / "shop" / "__init__.py").write_text("VALUE = 1\n")
    (root / "jobs.py").write_text("X = 1\n")
    return root


def test_requirements_are_evaluated_on_the_worker_markers_and_specifiers_included():
    facts = gather_facts(
        [
            "pluggy>=1",  # installed: nothing to do
            "pluggy<1",  # installed, but not this version
            "surely-not-installed==1.0",
            "surely-not-installed ; python_version < '3.0'",  # not for this Python
            "pluggy @ https://example.org/pluggy.whl",  # a direct reference is never taken as there
            "--extra-index-url https://example.org/simple",  # an option, not a requirement
            "not a requirement !!",
        ],
        [],
    )
    assert facts.missing == [
        "pluggy<1",
        "surely-not-installed==1.0",
        "pluggy @ https://example.org/pluggy.whl",
        "not a requirement !!",
    ]
    assert facts.python and facts.platform and facts.zoopipe and facts.native_build_id


def test_code_the_worker_holds_as_the_driver_does_is_not_shipped_and_changed_code_is(tmp_path, monkeypatch):
    root = project(tmp_path)
    monkeypatch.syspath_prepend(str(root))  # this process imports shop and jobs from the project
    env = WorkerEnvironment.from_project(root, local_packages=False)
    checks = code_checks(env)
    assert gather_facts([], checks, env.ignore_patterns()).stale_code == []
    # A cluster node with another copy (here: the same file touched later) holds other code.
    stamp = (root / "shop" / "__init__.py").stat()
    os.utime(root / "shop" / "__init__.py", ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 10**9))
    facts = gather_facts([], checks, env.ignore_patterns())
    assert facts.stale_code == [str(root / "shop")]
    needed = needed_environment(env, [facts])
    assert needed.code_paths == [str(root / "shop")] and needed.requirements == []


def test_needed_environment_keeps_what_any_node_lacks_with_the_option_lines():
    env = WorkerEnvironment(
        requirements=["--extra-index-url https://example.org/simple", "a==1", "b==2", "c==3"],
        env_vars={"MODE": "fast"},
        ignore_file=None,
    )
    node = driver_facts()
    one, two = dataclasses.replace(node, missing=["a==1"]), dataclasses.replace(node, missing=["c==3"])
    needed = needed_environment(env, [one, two])
    assert needed.requirements == ["--extra-index-url https://example.org/simple", "a==1", "c==3"]
    assert needed.env_vars == {"MODE": "fast"}
    assert needed_environment(env, [node]).requirements == []


def test_a_python_or_pydantic_major_difference_fails_with_a_table_and_others_warn(caplog):
    env = WorkerEnvironment(ignore_file=None)
    mine = driver_facts()
    older_python = dataclasses.replace(mine, python="3.9.18", host="node-2")
    with pytest.raises(EnvironmentMismatch) as raised:
        plan_environment(env, [older_python], "RayEngine")
    message = str(raised.value)
    assert "what" in message and "driver" in message and "node-2" in message
    assert "python" in message and mine.python in message and "3.9.18" in message
    pydantic_one = dataclasses.replace(mine, versions={**mine.versions, "pydantic": "1.10.13"})
    with pytest.raises(EnvironmentMismatch, match="pydantic"):
        plan_environment(env, [pydantic_one], "RayEngine")
    other_arrow = dataclasses.replace(mine, versions={**mine.versions, "pyarrow": "1.0.0"}, host="node-3")
    with caplog.at_level(logging.WARNING):
        assert plan_environment(env, [other_arrow], "RayEngine").code_paths == []
    assert "pyarrow" in caplog.text and "1.0.0" in caplog.text and "node-3" in caplog.text


def test_a_node_with_another_zoopipe_build_gets_zoopipes_packages_shipped():
    env = WorkerEnvironment(ignore_file=None)
    other = dataclasses.replace(driver_facts(), native_build_id="0" * 40)
    needed = plan_environment(env, [other], "RayEngine")
    import zoopipe_core

    assert str(Path(zoopipe_core.__file__).parent.resolve()) in needed.code_paths
    assert needed.code_paths == zoopipe_code_paths()


def test_the_handshake_names_driver_and_worker_builds():
    mine = native_build()
    check_builds("RayEngine", [("node-1", mine)])
    stale = NativeBuild("0.0.9", "f" * 40, "/opt/zoopipe_core/_native.so")
    with pytest.raises(EnvironmentMismatch) as raised:
        check_builds("RayEngine", [("node-1", mine), ("node-2", stale)])
    message = str(raised.value)
    assert "node-2" in message and "0.0.9" in message and mine.build_id in message
    assert "node-1" not in message and "install the same zoopipe-core wheel" in message


def test_the_build_id_is_the_linkers_gnu_build_id():
    build = native_build()
    assert build.build_id == gnu_build_id(Path(build.path))
    assert len(build.build_id) == 40


def test_startup_environment_is_the_project_the_engine_starts_in(tmp_path):
    root = project(tmp_path)
    env = startup_environment("project", cwd=root / "shop")
    assert env is not None and env.project_dir == str(root)
    assert startup_environment("project", cwd=Path("/")) is None
    assert startup_environment(None) is None


def test_a_plain_directory_is_held_only_when_it_is_on_the_workers_import_path(tmp_path, monkeypatch):
    code = tmp_path / "code"
    code.mkdir()
    (code / "tool.py").write_text("X = 1\n")
    env = WorkerEnvironment(code_paths=[str(code)], ignore_file=None)
    checks = code_checks(env)
    assert gather_facts([], checks).stale_code == [str(code)]  # there, but not importable
    monkeypatch.syspath_prepend(str(code))
    assert gather_facts([], checks).stale_code == []


def test_workers_that_cannot_import_zoopipe_get_it_whole_with_its_requirements():
    env = WorkerEnvironment(requirements=["attrs==24.2.0"], ignore_file=None)
    needed = plan_environment(env, None, "RayEngine")
    assert needed.code_paths == zoopipe_code_paths()
    assert needed.requirements[0] == "attrs==24.2.0"
    assert any(line.startswith("pydantic") for line in needed.requirements)
