"""The ``poetry`` installer: the locked main-group requirements of a Poetry project."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from zoopipe_core.installers.base import Installer, read_toml, unique


class PoetryInstaller(Installer):
    """The locked main-group requirements of a Poetry project, read from ``poetry.lock``.

    Example:
        >>> import pathlib, tempfile
        >>> project = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (project / "poetry.lock").write_text('''
        ... [[package]]
        ... name = "idna"
        ... version = "3.10"
        ... optional = false
        ... groups = ["main"]
        ... [[package]]
        ... name = "pytest"
        ... version = "8.3.3"
        ... optional = false
        ... groups = ["dev"]
        ... ''')
        >>> PoetryInstaller().requirements(project)
        ['idna==3.10']
    """

    name = "poetry"
    locked = True

    def requirements(self, project_dir: str | os.PathLike[str]) -> list[str]:
        directory = Path(project_dir)
        lock_path = directory / "poetry.lock"
        if not lock_path.is_file():
            raise FileNotFoundError(f"no poetry.lock in {directory}; run `poetry lock` there first")
        requirements = []
        for package in read_toml(lock_path).get("package", []):
            if package.get("optional", False) or not _poetry_main_group(package):
                continue
            source = package.get("source", {})
            if source.get("type") in ("directory", "file"):
                continue  # the user's own code, shipped with the code, not installed from an index
            requirement = _poetry_requirement(package, source)
            markers = package.get("markers")
            if isinstance(markers, dict):
                markers = markers.get("main")
            requirements.append(f"{requirement} ; {markers}" if markers else requirement)
        return unique(requirements)


def _poetry_main_group(package: dict[str, Any]) -> bool:
    if "groups" in package:  # Poetry >= 1.5 lock files
        return "main" in package["groups"]
    return package.get("category", "main") == "main"


def _poetry_requirement(package: dict[str, Any], source: dict[str, Any]) -> str:
    name = package["name"]
    if source.get("type") == "git":
        reference = source.get("resolved_reference") or source.get("reference")
        return f"{name} @ git+{source['url']}@{reference}"
    if source.get("type") == "url":
        return f"{name} @ {source['url']}"
    return f"{name}=={package['version']}"
