"""uv and Poetry projects with real lock files (made by uv 0.13 and Poetry 2.5.1, tests/installers/
fixtures/): detected, and their locked main requirements read; uv, a test dependency, runs
`uv export`; Poetry, a test dependency too, checks its lock and agrees with our reading of it."""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path

import pytest

from zoopipe_core.engines import WorkerEnvironment
from zoopipe_core.installers import PoetryInstaller, UvInstaller, explain_installer

FIXTURES = Path(__file__).parent / "fixtures"
SCRIPTS = sysconfig.get_path("scripts")  # where this environment's uv and poetry are


@pytest.fixture(autouse=True)
def tools_on_path(monkeypatch):
    monkeypatch.setenv("PATH", f"{SCRIPTS}:{__import__('os').environ.get('PATH', '')}")
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    monkeypatch.delenv("POETRY_ACTIVE", raising=False)


def copy(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / name, tmp_path / name))


def test_a_uv_project_is_read_through_uv_export_without_its_dev_group(tmp_path):
    root = copy("uv_project", tmp_path)
    assert explain_installer(root, environ={}) == ("uv", "uv.lock is in the project")
    assert shutil.which("uv") is not None
    from_cli = UvInstaller(use_uv_cli=True).requirements(root)
    from_lock = UvInstaller(use_uv_cli=False).requirements(root)
    assert from_cli == from_lock == ["attrs==24.2.0", "idna==3.20"]  # not iniconfig (dev)
    env = WorkerEnvironment.from_project(root / "uvshop", local_packages=False)
    assert (env.installer, env.requirements) == ("uv", ["attrs==24.2.0", "idna==3.20"])
    assert env.code_paths == [str(root / "uvshop")]


def test_a_poetry_project_is_read_from_its_lock_without_its_dev_group(tmp_path):
    root = copy("poetry_project", tmp_path)
    assert explain_installer(root, environ={}) == ("poetry", "poetry.lock is in the project")
    assert PoetryInstaller().requirements(root) == ["attrs==24.2.0"]  # not iniconfig (dev)
    env = WorkerEnvironment.from_project(root, local_packages=False)
    assert (env.installer, env.requirements) == ("poetry", ["attrs==24.2.0"])
    assert env.code_paths == [str(root / "poetryshop")]


def test_poetry_itself_agrees_with_our_reading_of_its_lock(tmp_path, monkeypatch):
    import subprocess

    root = copy("poetry_project", tmp_path)
    poetry = shutil.which("poetry")
    assert poetry is not None
    monkeypatch.setenv("POETRY_VIRTUALENVS_CREATE", "false")  # read-only: no venv for the fixture
    check = subprocess.run([poetry, "check", "--lock"], cwd=root, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr  # the lock is Poetry's, consistent with pyproject
    shown = subprocess.run(
        [poetry, "show", "--only", "main", "--no-ansi"], cwd=root, capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    pinned = [
        f"{name}=={version}" for name, version, *_ in (line.split() for line in shown.stdout.splitlines())
    ]
    assert pinned == PoetryInstaller().requirements(root) == ["attrs==24.2.0"]
