"""Real DVC repositories for the zoopipe_dvc tests: the `dvc` command of this environment, run in
the repository with the environment's bin first on PATH, and DVC's global and system configs
pointed at empty directories so the machine's own DVC configuration does not leak in."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
DVC = BIN / "dvc"


def dvc_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment `dvc` and the scripts of its stages run in."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["DVC_GLOBAL_CONFIG_DIR"] = str(home / "dvc-global")
    env["DVC_SYSTEM_CONFIG_DIR"] = str(home / "dvc-system")
    env["DVC_NO_ANALYTICS"] = "1"
    env.update(extra)
    return env


def dvc(repo: Path, *args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
    """Run ``dvc args...`` in ``repo``; its stdout and stderr together."""
    done = subprocess.run(
        [str(DVC), *args],
        cwd=repo,
        env=env if env is not None else dvc_env(repo.parent),
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    if check and done.returncode != 0:
        raise AssertionError(f"`dvc {' '.join(args)}` exited with {done.returncode}:\n{output}")
    return output


def init_repo(repo: Path, env: dict[str, str] | None = None) -> Path:
    """A new DVC repository (no Git) at ``repo``."""
    repo.mkdir(parents=True, exist_ok=True)
    dvc(repo, "init", "--no-scm", "-q", env=env)
    return repo


def dvc_in_process(repo: Path, *args: str) -> None:
    """Run ``dvc args...`` in ``repo`` through DVC's own entry point in this process (no start-up
    cost; it reads this process's environment). The working directory is restored after."""
    from dvc.cli import main

    cwd = os.getcwd()
    try:
        code = main(["--cd", str(repo), *args])
    finally:
        os.chdir(cwd)
    assert code == 0, f"`dvc {' '.join(args)}` exited with {code} (its messages are above)"
