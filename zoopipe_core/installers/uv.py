"""The ``uv`` installer: the locked requirements of a uv project (``uv export``, or uv.lock itself)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zoopipe_core.installers.base import Installer, command_arguments, read_toml, unique


class UvInstaller(Installer):
    """The locked requirements of a uv project.

    Uses ``uv export`` when uv is on PATH; otherwise reads ``uv.lock`` and follows the
    dependencies of the project (not its dev groups), keeping their environment markers.

    Example:
        >>> import pathlib, tempfile
        >>> project = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (project / "uv.lock").write_text('''
        ... [[package]]
        ... name = "demo"
        ... version = "0.1.0"
        ... source = { editable = "." }
        ... dependencies = [{ name = "idna" }]
        ... [[package]]
        ... name = "idna"
        ... version = "3.10"
        ... source = { registry = "https://pypi.org/simple" }
        ... ''')
        >>> UvInstaller(use_uv_cli=False).requirements(project)
        ['idna==3.10']
    """

    name = "uv"
    locked = True

    def __init__(self, use_uv_cli: bool | None = None) -> None:
        # None: use the uv CLI when it is on PATH. False forces reading uv.lock directly.
        self.use_uv_cli = use_uv_cli

    def _uv(self) -> str | None:
        if self.use_uv_cli is False:
            return None
        uv = shutil.which("uv")
        if uv is None and self.use_uv_cli:
            raise FileNotFoundError("use_uv_cli=True but uv is not on PATH; install uv")
        return uv

    def requirements(self, project_dir: str | os.PathLike[str]) -> list[str]:
        directory = Path(project_dir)
        lock_path = directory / "uv.lock"
        if not lock_path.is_file():
            raise FileNotFoundError(f"no uv.lock in {directory}; run `uv lock` there first")
        uv = self._uv()
        if uv is None:
            return _uv_lock_requirements(read_toml(lock_path))
        command = [
            uv,
            "export",
            "--no-hashes",
            "--format",
            "requirements-txt",
            "--frozen",
            "--no-emit-project",
            "--no-dev",  # workers run the project, not its tests and tools
        ]
        result = subprocess.run(command, cwd=directory, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(
                f"`{' '.join(command)}` failed in {directory} (exit {result.returncode}): "
                f"{result.stderr.strip()}"
            )
        lines = (line.strip() for line in result.stdout.splitlines())
        return [line for line in lines if line and not line.startswith("#")]

    def install_command(self, requirements: Sequence[str], target: str | None = None) -> list[str]:
        uv = shutil.which("uv") if self.use_uv_cli is not False else None
        if not requirements or uv is None:
            return super().install_command(requirements, target)
        options = self.placement_options(target)
        return [uv, "pip", "install", "--python", sys.executable, *options, *command_arguments(requirements)]


_LOCAL_SOURCES = ("editable", "virtual", "directory", "path")


def _is_local(package: dict[str, Any]) -> bool:
    return any(key in package.get("source", {}) for key in _LOCAL_SOURCES)


def _uv_requirement(package: dict[str, Any]) -> str:
    name, source = package["name"], package.get("source", {})
    if "git" in source:
        # uv writes git sources as "https://host/repo?rev=main#<commit>": pin the commit.
        url, _, commit = source["git"].partition("#")
        return f"{name} @ git+{url.split('?', 1)[0]}@{commit}" if commit else f"{name} @ git+{url}"
    if "url" in source:
        return f"{name} @ {source['url']}"
    return f"{name}=={package['version']}"


def _uv_lock_requirements(lock: dict[str, Any]) -> list[str]:
    """Walk uv.lock from the local project packages; each path's markers become a condition."""
    packages: list[dict[str, Any]] = lock.get("package", [])
    by_name: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for package in packages:
        by_name[package["name"]].append(package)

    def pick(edge: dict[str, Any]) -> dict[str, Any] | None:
        candidates = by_name.get(edge["name"], [])
        if "version" in edge:
            candidates = [p for p in candidates if p.get("version") == edge["version"]]
        return candidates[0] if candidates else None

    # A condition is a frozenset of markers that must all hold; a package reached through
    # several paths is needed when any of their conditions holds.
    conditions: dict[int, set[frozenset[str]]] = {}
    reached: list[dict[str, Any]] = []
    queue: list[tuple[dict[str, Any], frozenset[str], tuple[str, ...]]] = [
        (p, frozenset(), ()) for p in packages if _is_local(p)
    ]
    seen: set[tuple[int, frozenset[str], tuple[str, ...]]] = set()
    while queue:
        package, condition, extras = queue.pop(0)
        edges = list(package.get("dependencies", []))
        for extra in extras:
            edges.extend(package.get("optional-dependencies", {}).get(extra, []))
        for edge in edges:
            target = pick(edge)
            if target is None:
                continue
            edge_condition = condition | ({edge["marker"]} if "marker" in edge else set())
            edge_extras = tuple(sorted(edge.get("extra", [])))
            key = (id(target), edge_condition, edge_extras)
            if key in seen:
                continue
            seen.add(key)
            if not _is_local(target):
                if id(target) not in conditions:
                    conditions[id(target)] = set()
                    reached.append(target)
                conditions[id(target)].add(edge_condition)
            queue.append((target, edge_condition, edge_extras))
    return unique(_with_markers(_uv_requirement(p), conditions[id(p)]) for p in reached)


def _with_markers(requirement: str, conditions: set[frozenset[str]]) -> str:
    if frozenset() in conditions:
        return requirement
    alternatives = sorted(" and ".join(f"({m})" for m in sorted(c)) for c in conditions)
    marker = alternatives[0] if len(alternatives) == 1 else " or ".join(f"({a})" for a in alternatives)
    return f"{requirement} ; {marker}"
