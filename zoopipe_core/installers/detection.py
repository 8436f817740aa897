"""Which installer a project uses, judged by its files and the active environment, and why.

Example:
    >>> import pathlib, tempfile
    >>> project = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (project / "poetry.lock").write_text("")
    >>> explain_installer(project, environ={})
    ('poetry', 'poetry.lock is in the project')
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from zoopipe_core.installers.base import read_pyproject


def detect_installer(project_dir: str | os.PathLike[str]) -> str | None:
    """The installer a project uses (see :func:`explain_installer`); None when there is nothing
    to go by."""
    return explain_installer(project_dir)[0]


def explain_installer(
    project_dir: str | os.PathLike[str], environ: Mapping[str, str] | None = None
) -> tuple[str | None, str]:
    """The installer a project uses and the reason, in this order of evidence:

    ``uv.lock`` → ``"uv"``; ``poetry.lock`` or ``[tool.poetry]`` → ``"poetry"``; an active
    environment made by uv (its ``pyvenv.cfg`` names uv) → ``"uv"``; an active Poetry
    environment (``POETRY_ACTIVE``) → ``"poetry"``; ``requirements.txt`` or a ``[project]``
    table → ``"pip"``. None (with the reason) when there is nothing to go by: the workers are
    taken as provisioned.

    ``environ`` stands for ``os.environ`` (the active environment is read from it).
    """
    directory = Path(project_dir)
    environ = os.environ if environ is None else environ
    pyproject = read_pyproject(directory)
    if (directory / "uv.lock").is_file():
        return "uv", "uv.lock is in the project"
    if (directory / "poetry.lock").is_file():
        return "poetry", "poetry.lock is in the project"
    if "poetry" in pyproject.get("tool", {}):
        return "poetry", "pyproject.toml has a [tool.poetry] table"
    has_requirements = (directory / "requirements.txt").is_file() or "project" in pyproject
    venv = environ.get("VIRTUAL_ENV")
    if has_requirements and venv and _made_by_uv(Path(venv)):
        return "uv", f"the active environment {venv} was made by uv"
    if has_requirements and environ.get("POETRY_ACTIVE"):
        return "poetry", "a Poetry environment is active (POETRY_ACTIVE)"
    if (directory / "requirements.txt").is_file():
        return "pip", "requirements.txt is in the project"
    if "project" in pyproject:
        return "pip", "pyproject.toml has a [project] table"
    return None, (
        "the project has no uv.lock, poetry.lock, requirements.txt or [project] table: the "
        "workers are taken as provisioned already"
    )


def _made_by_uv(venv: Path) -> bool:
    config = venv / "pyvenv.cfg"
    if not config.is_file():
        return False
    lines = config.read_text(encoding="utf-8", errors="replace").splitlines()
    return any(line.split("=", 1)[0].strip() == "uv" for line in lines)
