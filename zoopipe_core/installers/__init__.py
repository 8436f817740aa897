"""Dependency installers: which requirements a project needs, and the command that installs them.

An engine preparing workers asks the installer of the user's project for ``requirements()``
(requirements.txt lines) and runs ``install_command(...)`` where the workers live, or hands the
requirements to the cluster (Ray's ``runtime_env``).

Example:
    >>> import pathlib, tempfile
    >>> project = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (project / "requirements.txt").write_text("requests==2.32.3\\n")
    >>> detect_installer(project)
    'pip'
    >>> PipInstaller().requirements(project)
    ['requests==2.32.3']
"""

from __future__ import annotations

import abc
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path} is not valid TOML ({exc}); fix the file") from exc


def _read_pyproject(project_dir: Path) -> dict[str, Any]:
    path = project_dir / "pyproject.toml"
    return _read_toml(path) if path.is_file() else {}


def detect_installer(project_dir: str | os.PathLike[str]) -> str | None:
    """The installer a project uses, judged by its files; None when there is nothing to go by.

    ``uv.lock`` → ``"uv"``; ``poetry.lock`` or ``[tool.poetry]`` → ``"poetry"``;
    ``requirements.txt`` or a ``[project]`` table → ``"pip"``.
    """
    directory = Path(project_dir)
    pyproject = _read_pyproject(directory)
    if (directory / "uv.lock").is_file():
        return "uv"
    if (directory / "poetry.lock").is_file() or "poetry" in pyproject.get("tool", {}):
        return "poetry"
    if (directory / "requirements.txt").is_file() or "project" in pyproject:
        return "pip"
    return None


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


class Installer(abc.ABC):
    """How a project's dependencies are found and installed.

    Subclasses set ``name`` (their registered name) and implement ``requirements``.

    Example:
        >>> class Pinned(Installer):
        ...     name = "pinned"
        ...     def requirements(self, project_dir):
        ...         return ["attrs==24.2.0"]
        >>> Pinned().install_command(["attrs==24.2.0"])[1:]
        ['-m', 'pip', 'install', 'attrs==24.2.0']
    """

    name: ClassVar[str] = ""

    @abc.abstractmethod
    def requirements(self, project_dir: str | os.PathLike[str]) -> list[str]:
        """The project's requirements, as requirements.txt lines (pip options included)."""

    def install_command(self, requirements: Sequence[str]) -> list[str]:
        """The command that installs ``requirements`` into this interpreter's environment.

        Empty when there is nothing to install. Call it where the command will run: it names
        that machine's interpreter.
        """
        if not requirements:
            return []
        return [sys.executable, "-m", "pip", "install", *_command_arguments(requirements)]


def _command_arguments(requirements: Sequence[str]) -> list[str]:
    # An option line ("--extra-index-url URL") becomes separate arguments; a requirement
    # ("pkg ; python_version < '3.12'") stays one argument, spaces and all.
    arguments: list[str] = []
    for line in requirements:
        arguments.extend(shlex.split(line) if line.startswith("-") else [line])
    return arguments


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
        pyproject = _read_pyproject(directory)
        if not requirements_txt.is_file() and "project" not in pyproject:
            raise FileNotFoundError(
                f"the pip installer found neither requirements.txt nor a [project] table in "
                f"{directory / 'pyproject.toml'}; add one, or use ManualInstaller([...])"
            )
        lines = _requirement_lines(requirements_txt) if requirements_txt.is_file() else []
        return _unique([*lines, *pyproject.get("project", {}).get("dependencies", [])])


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
            return _uv_lock_requirements(_read_toml(lock_path))
        command = [
            uv,
            "export",
            "--no-hashes",
            "--format",
            "requirements-txt",
            "--frozen",
            "--no-emit-project",
        ]
        result = subprocess.run(command, cwd=directory, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(
                f"`{' '.join(command)}` failed in {directory} (exit {result.returncode}): "
                f"{result.stderr.strip()}"
            )
        lines = (line.strip() for line in result.stdout.splitlines())
        return [line for line in lines if line and not line.startswith("#")]

    def install_command(self, requirements: Sequence[str]) -> list[str]:
        uv = shutil.which("uv") if self.use_uv_cli is not False else None
        if not requirements or uv is None:
            return super().install_command(requirements)
        return [uv, "pip", "install", "--python", sys.executable, *_command_arguments(requirements)]


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
    queue = [(p, frozenset(), ()) for p in packages if _is_local(p)]
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
    return _unique(_with_markers(_uv_requirement(p), conditions[id(p)]) for p in reached)


def _with_markers(requirement: str, conditions: set[frozenset[str]]) -> str:
    if frozenset() in conditions:
        return requirement
    alternatives = sorted(" and ".join(f"({m})" for m in sorted(c)) for c in conditions)
    marker = (
        alternatives[0] if len(alternatives) == 1 else " or ".join(f"({a})" for a in alternatives)
    )
    return f"{requirement} ; {marker}"


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

    def requirements(self, project_dir: str | os.PathLike[str]) -> list[str]:
        directory = Path(project_dir)
        lock_path = directory / "poetry.lock"
        if not lock_path.is_file():
            raise FileNotFoundError(f"no poetry.lock in {directory}; run `poetry lock` there first")
        requirements = []
        for package in _read_toml(lock_path).get("package", []):
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
        return _unique(requirements)


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


class ManualInstaller(Installer):
    """Exactly the requirements it is given, whatever the project holds.

    Example:
        >>> installer = ManualInstaller(["numpy==2.1.2", "--extra-index-url https://example.org"])
        >>> installer.requirements(".")
        ['numpy==2.1.2', '--extra-index-url https://example.org']
        >>> installer.install_command(installer.requirements("."))[-3:]
        ['numpy==2.1.2', '--extra-index-url', 'https://example.org']
    """

    name = "manual"

    def __init__(self, requirements: Iterable[str] = ()) -> None:
        if isinstance(requirements, str):
            raise TypeError("pass a list of requirements, not one string: ManualInstaller([...])")
        self._requirements = list(requirements)

    def requirements(self, project_dir: str | os.PathLike[str]) -> list[str]:
        return list(self._requirements)
