"""install_once: one install per host and requirement set, bounded in time (the command run is a
stand-in for the installer, so the tests need no package index)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from zoopipe_core.installers import InstallFailed, install_once
from zoopipe_core.installers.pip import PipInstaller


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("ZOOPIPE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _installer_runs(monkeypatch, script: str) -> None:
    """The pip installer's command becomes ``python -c script`` with the target appended."""

    def command(self, requirements, target=None):
        return [sys.executable, "-c", script, str(target)]

    monkeypatch.setattr(PipInstaller, "install_command", command)


def test_an_installer_that_hangs_fails_within_the_timeout_and_leaves_nothing_half_installed(
    cache, monkeypatch
):
    _installer_runs(monkeypatch, "import os, sys, time; os.makedirs(sys.argv[1]); time.sleep(60)")
    began = time.monotonic()
    with pytest.raises(InstallFailed, match=r"did not finish within 1 s on "):
        install_once(["cowsay==6.1"], "pip", attempt="a", timeout=1.0)
    assert time.monotonic() - began < 15
    envs = cache / "envs"
    assert not [p for p in envs.iterdir() if p.is_dir()]  # no partial, no target
    # The same attempt does not try again: it fails at once with the recorded reason.
    began = time.monotonic()
    with pytest.raises(InstallFailed, match="did not finish"):
        install_once(["cowsay==6.1"], "pip", attempt="a", timeout=1.0)
    assert time.monotonic() - began < 1


def test_a_requirement_set_is_installed_once_per_host_then_reused(cache, monkeypatch):
    _installer_runs(
        monkeypatch, "import os, sys; os.makedirs(sys.argv[1]); open(sys.argv[1] + '/m.py', 'w').close()"
    )
    first = install_once(["cowsay==6.1"], "pip")
    again = install_once(["cowsay==6.1"], "pip")
    assert first.installed and not again.installed and first.path == again.path
    assert (Path(first.path) / "m.py").is_file()
    assert len((cache / "envs" / "installs.log").read_text().splitlines()) == 1
