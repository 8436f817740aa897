"""Which installer a project uses, judged by its files."""

from __future__ import annotations

import os
from pathlib import Path

from zoopipe_core.installers.base import read_pyproject


def detect_installer(project_dir: str | os.PathLike[str]) -> str | None:
    """The installer a project uses, judged by its files; None when there is nothing to go by.

    ``uv.lock`` → ``"uv"``; ``poetry.lock`` or ``[tool.poetry]`` → ``"poetry"``;
    ``requirements.txt`` or a ``[project]`` table → ``"pip"``.
    """
    directory = Path(project_dir)
    pyproject = read_pyproject(directory)
    if (directory / "uv.lock").is_file():
        return "uv"
    if (directory / "poetry.lock").is_file() or "poetry" in pyproject.get("tool", {}):
        return "poetry"
    if (directory / "requirements.txt").is_file() or "project" in pyproject:
        return "pip"
    return None
