"""A project as workers need it: its root, installer, requirements and the code that ships.

:func:`resolve_project` reads it once, on the driver. The installer comes from the plugins'
``zoopipe_select_installer`` hook (the built-in rules in :mod:`~zoopipe_core.installers.detection`
answer last); the requirements from that installer (the lock file when there is one); the code
from the project's own import packages and modules (flat or ``src/`` layout), and the packages
installed in editable mode or from a local directory that live outside it.

Example:
    >>> import pathlib, tempfile
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (root / "requirements.txt").write_text("attrs==24.2.0\\n")
    >>> (root / "shop").mkdir(); _ = (root / "shop" / "__init__.py").write_text("")
    >>> _ = (root / "jobs.py").write_text("")
    >>> project = resolve_project(root / "shop", local_packages=False)
    >>> project.root == root, project.installer, project.requirements
    (True, 'pip', ['attrs==24.2.0'])
    >>> [pathlib.Path(p).name for p in project.code_paths]
    ['jobs.py', 'shop']
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import json
import logging
import os
from pathlib import Path

from zoopipe_core.installers.detection import explain_installer

#: Files that mark a project's root directory.
PROJECT_MARKERS = ("pyproject.toml", "uv.lock", "poetry.lock", "requirements.txt", "setup.py", "setup.cfg")

#: Top-level modules of a project that are tooling, not code its workers import.
TOOLING_MODULES = frozenset({"setup", "conftest", "noxfile", "fabfile", "tasks", "manage"})

#: Directories at a project's top that hold no importable code of its own.
NON_CODE_DIRS = frozenset(
    {"tests", "test", "docs", "doc", "examples", "benchmarks", "scripts", "build", "dist"}
)

_PROJECT_DISTRIBUTIONS_SKIPPED = frozenset({"pip", "setuptools", "wheel"})

_log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Project:
    """What :func:`resolve_project` found.

    - ``root``: the project's directory (where its ``pyproject.toml`` or lock file is).
    - ``installer``, ``reason``: the installer's registered name and why it was chosen
      (``"manual"`` when nothing says what to install).
    - ``requirements``: requirement lines, exact when a lock file pins them.
    - ``code_paths``: the packages and modules to ship (absolute paths).
    - ``ignore_file``: the project's ``.rayignore``, or None.

    Example:
        >>> Project(Path("/p"), "manual", "nothing to install", [], [], None).installer
        'manual'
    """

    root: Path
    installer: str
    reason: str
    requirements: list[str]
    code_paths: list[str]
    ignore_file: str | None


def find_project_root(path: str | os.PathLike[str] = ".") -> Path | None:
    """The nearest directory at or above ``path`` holding a project marker (see
    :data:`PROJECT_MARKERS`); None when there is none up to the filesystem's root.

    Example:
        >>> import pathlib, tempfile
        >>> root = pathlib.Path(tempfile.mkdtemp()); (root / "pkg").mkdir()
        >>> _ = (root / "pyproject.toml").write_text("")
        >>> find_project_root(root / "pkg") == root
        True
    """
    start = Path(path).expanduser().resolve()
    if start.is_file():
        start = start.parent
    for directory in (start, *start.parents):
        if any((directory / marker).is_file() for marker in PROJECT_MARKERS):
            return directory
    return None


def resolve_project(path: str | os.PathLike[str] = ".", *, local_packages: bool = True) -> Project:
    """The project at or above ``path`` (``path`` itself when no marker is found), resolved on
    this machine. ``local_packages=False`` leaves out the editable and path-installed packages
    of the running environment that live outside the project."""
    from zoopipe_core.plugins import get_installer_class, select_installer

    root = find_project_root(path) or Path(path).expanduser().resolve()
    chosen = select_installer(root)
    detected, reason = explain_installer(root)
    if chosen is None:
        name = "manual"
    else:
        name = chosen
        if chosen != detected:
            reason = f"a plugin's zoopipe_select_installer chose {chosen!r} for {root}"
    requirements = [] if name == "manual" else list(get_installer_class(name)().requirements(root))
    code = project_code(root)
    for location in local_package_paths():
        # Inside the root: the project's own packages, installed editable from any layout
        # (package-dir mappings included); outside: editable or path dependencies.
        if location not in code and (local_packages or _inside(Path(location), root)):
            code.append(location)
    ignore = root / ".rayignore"
    return Project(root, name, reason, requirements, code, str(ignore) if ignore.is_file() else None)


def project_code(root: Path) -> list[str]:
    """The project's own import packages and modules: in ``src/`` when the project uses that
    layout, else at its top (tests, docs and tooling left out), sorted by name.

    One this interpreter imports from somewhere else (an installed copy, when the driver does
    not run from the project) is left out: workers must run what the driver runs."""
    base = root / "src" if (root / "src").is_dir() else root
    found = []
    for entry in sorted(base.iterdir(), key=lambda p: p.name):
        if entry.name.startswith((".", "_")):
            continue
        is_package = entry.is_dir() and (entry / "__init__.py").is_file() and entry.name not in NON_CODE_DIRS
        is_module = entry.is_file() and entry.suffix == ".py" and entry.stem not in TOOLING_MODULES
        if not (is_package or is_module):
            continue
        elsewhere = imported_from_elsewhere(entry)
        if elsewhere is None:
            found.append(str(entry))
        else:
            _log.info(
                "%s is not shipped: this interpreter imports it from %s, as workers must too",
                entry,
                elsewhere,
            )
    return found


def imported_from_elsewhere(entry: Path) -> str | None:
    """Where this interpreter imports the top-level module or package ``entry`` names from,
    when that is not ``entry`` itself; None when it is, or when it is not importable here.

    Example:
        >>> import pathlib, tempfile
        >>> copy = pathlib.Path(tempfile.mkdtemp()) / "json"; copy.mkdir()
        >>> imported_from_elsewhere(copy).endswith("json")  # the standard library's json
        True
    """
    name = entry.stem if entry.is_file() else entry.name
    if not name.isidentifier():
        return None
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        location = next(iter(spec.submodule_search_locations), None)
    else:
        location = spec.origin
    if not location or not os.path.exists(location):
        return None  # built in, frozen or a namespace package: nothing to compare
    return None if Path(location).resolve() == entry.resolve() else location


def local_package_paths() -> list[str]:
    """The packages of this environment installed in editable mode or from a local directory
    (``pip install -e .``, ``pip install ./lib``, uv and Poetry path dependencies): where their
    top-level packages are, which is where the code workers need lives."""
    paths: list[str] = []
    for distribution in importlib.metadata.distributions():
        if distribution.metadata["Name"] in _PROJECT_DISTRIBUTIONS_SKIPPED or not _is_local(distribution):
            continue
        for name in _top_level_names(distribution):
            spec = importlib.util.find_spec(name) if name.isidentifier() else None
            if spec is None:
                continue
            if spec.submodule_search_locations:
                location = next(iter(spec.submodule_search_locations), None)
            else:
                location = spec.origin
            if location and os.path.exists(location) and location not in paths:
                paths.append(location)
    return paths


def _is_local(distribution: importlib.metadata.Distribution) -> bool:
    text = distribution.read_text("direct_url.json")
    if not text:
        return False
    try:
        direct_url = json.loads(text)
    except ValueError:
        return False
    return bool(direct_url.get("url", "").startswith("file://") and "dir_info" in direct_url)


def _top_level_names(distribution: importlib.metadata.Distribution) -> list[str]:
    text = distribution.read_text("top_level.txt")
    if text:
        return [line.strip() for line in text.splitlines() if line.strip()]
    names = set()
    for file in distribution.files or ():
        parts = file.parts
        if not parts or parts[0].endswith((".dist-info", ".pth")) or parts[0].startswith("__editable__"):
            continue
        names.add(parts[0].removesuffix(".py"))
    return sorted(names)


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
    except ValueError:
        return False
    return True
