"""The ``pip`` installer: requirements.txt (with its ``-r`` includes) and ``[project].dependencies``."""

from __future__ import annotations

import os
import re
from pathlib import Path

from zoopipe_core.installers.base import Installer, read_pyproject, unique


def _requirement_lines(path: Path, seen: frozenset[Path] = frozenset()) -> list[str]:
    """The lines of a requirements file, without comments, with ``-r`` includes inlined."""
    path = path.resolve()
    if path in seen:
        raise ValueError(f"{path} includes itself through -r; remove the cycle")
    text = path.read_text(encoding="utf-8").replace("\\\n", "")
    lines: list[str] = []
    for raw in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if not line:
            continue
        included = _included_file(line)
        if included is None:
            lines.append(line)
        else:
            lines.extend(_requirement_lines(path.parent / included, seen | {path}))
    return lines


def _included_file(line: str) -> str | None:
    for prefix in ("--requirement=", "--requirement ", "-r"):
        if line.startswith(prefix):
            return line[len(prefix) :].strip()
    return None


class PipInstaller(Installer):
    """Requirements from ``requirements.txt`` and ``[project].dependencies`` in pyproject.toml.

    Example:
        >>> import pathlib, tempfile
        >>> project = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (project / "pyproject.toml").write_text(
        ...     '[project]\\nname = "demo"\\nversion = "1"\\ndependencies = ["attrs>=23"]\\n')
        >>> PipInstaller().requirements(project)
        ['attrs>=23']
    """

    name = "pip"

    def requirements(self, project_dir: str | os.PathLike[str]) -> list[str]:
        directory = Path(project_dir)
        requirements_txt = directory / "requirements.txt"
        pyproject = read_pyproject(directory)
        if not requirements_txt.is_file() and "project" not in pyproject:
            raise FileNotFoundError(
                f"the pip installer found neither requirements.txt nor a [project] table in "
                f"{directory / 'pyproject.toml'}; add one, or use ManualInstaller([...])"
            )
        lines = _requirement_lines(requirements_txt) if requirements_txt.is_file() else []
        return unique([*lines, *pyproject.get("project", {}).get("dependencies", [])])
