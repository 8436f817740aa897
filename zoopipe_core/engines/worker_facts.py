"""What a worker already has, and what of an environment it still needs.

Before an engine prepares its workers it runs :func:`gather_facts` once per node: the worker
reports its Python and library versions, zoopipe's build, which of the environment's
requirements it does not satisfy (evaluated there, markers included) and which code paths it
does not hold as the driver does (the same files, sizes and modification times under the same
ignore rules). :func:`needed_environment` keeps only what some node lacks, so a local cluster
that shares the driver's interpreter installs and uploads nothing; :func:`compare_versions`
reports the versions that differ from the driver's, as errors where they break pickling.

Example:
    >>> from zoopipe_core.engines import WorkerEnvironment
    >>> env = WorkerEnvironment(requirements=["pluggy>=1", "surely-not-installed==1.0"], ignore_file=None)
    >>> facts = gather_facts(env.requirements, [])
    >>> facts.missing
    ['surely-not-installed==1.0']
    >>> needed_environment(env, [facts]).requirements
    ['surely-not-installed==1.0']
    >>> compare_versions(facts, gather_facts([], []))
    []
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import importlib.util
import platform
import socket
import sys
import sysconfig
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from zoopipe_core.engines.compiled_core import native_build

if TYPE_CHECKING:
    from zoopipe_core.engines.environment import WorkerEnvironment
    from zoopipe_core.installers import CodeFile

#: Distributions whose versions the driver and its workers compare. A difference in Python's
#: minor version or pydantic's major version breaks pickled tasks and models: an error.
COMPARED_DISTRIBUTIONS = ("ray", "dask", "distributed", "cloudpickle", "pydantic", "pyarrow")


@dataclasses.dataclass(frozen=True)
class CodeCheck:
    """One code path as the driver holds it: the module name workers import it by (None for a
    plain directory), the project it belongs to and the fingerprint of its files."""

    code_path: str
    module: str | None
    project_dir: str | None
    fingerprint: str


@dataclasses.dataclass(frozen=True)
class WorkerFacts:
    """What one worker reported (see :func:`gather_facts`)."""

    host: str
    python: str
    platform: str
    zoopipe: str
    native_build_id: str
    versions: dict[str, str]
    missing: list[str]
    stale_code: list[str]


def code_fingerprint(files: Sequence[CodeFile]) -> str:
    """A digest of the files' names, sizes and modification times."""
    digest = hashlib.sha256()
    for file in files:
        stat = file.source.stat()
        digest.update(f"{file.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def code_checks(environment: WorkerEnvironment) -> list[CodeCheck]:
    """The driver's side of the code comparison, one check per code path."""
    from zoopipe_core.installers import code_files

    rules = environment.ignore_rules()
    project = Path(environment.project_dir).resolve() if environment.project_dir else None
    checks = []
    for path in environment.resolved_code_paths():
        is_module = path.is_file() or (path / "__init__.py").is_file()
        module = path.stem if is_module else None
        fingerprint = code_fingerprint(code_files([path], rules, project))
        checks.append(CodeCheck(str(path), module, environment.project_dir, fingerprint))
    return checks


def gather_facts(
    requirements: Sequence[str], checks: Sequence[CodeCheck], ignore_patterns: Sequence[str] = ()
) -> WorkerFacts:
    """This worker's facts: versions, zoopipe's build, the ``requirements`` it does not satisfy
    and the code paths of ``checks`` it does not hold as the driver does."""
    build = native_build()
    return WorkerFacts(
        host=socket.gethostname(),
        python=platform.python_version(),
        platform=sysconfig.get_platform(),
        zoopipe=build.version,
        native_build_id=build.build_id,
        versions={name: _version(name) for name in COMPARED_DISTRIBUTIONS},
        missing=[line for line in requirements if not line.startswith("-") and not _satisfied(line)],
        stale_code=[check.code_path for check in checks if not _holds(check, ignore_patterns)],
    )


def needed_environment(environment: WorkerEnvironment, facts: Sequence[WorkerFacts]) -> WorkerEnvironment:
    """``environment`` narrowed to what at least one worker lacks: the requirements some worker
    does not satisfy (with the option lines, such as index URLs, when any remain) and the code
    paths some worker does not hold."""
    missing = {line for fact in facts for line in fact.missing}
    stale = {path for fact in facts for path in fact.stale_code}
    requirements = [line for line in environment.requirements if line in missing]
    if requirements:
        options = [line for line in environment.requirements if line.startswith("-")]
        requirements = [*options, *requirements]
    code = [p for p in environment.code_paths if str(Path(p).expanduser().resolve()) in stale]
    return dataclasses.replace(environment, requirements=requirements, code_paths=code)


@dataclasses.dataclass(frozen=True)
class VersionDifference:
    """One value that differs between the driver and a worker; ``fatal`` when it breaks
    pickled tasks (Python's minor version, pydantic's major version, zoopipe's build)."""

    name: str
    driver: str
    worker: str
    host: str
    fatal: bool


def compare_versions(driver: WorkerFacts, worker: WorkerFacts) -> list[VersionDifference]:
    """The values of ``worker`` that differ from the ``driver``'s."""
    rows = [
        ("python", driver.python, worker.python, _minor(driver.python) != _minor(worker.python)),
        ("zoopipe-core", driver.zoopipe, worker.zoopipe, True),
        ("zoopipe_core._native build", driver.native_build_id, worker.native_build_id, True),
    ]
    for name in COMPARED_DISTRIBUTIONS:
        mine, theirs = driver.versions.get(name, ""), worker.versions.get(name, "")
        fatal = name == "pydantic" and mine.split(".")[0] != theirs.split(".")[0]
        rows.append((name, mine, theirs, fatal))
    return [
        VersionDifference(name, mine or "-", theirs or "-", worker.host, fatal)
        for name, mine, theirs, fatal in rows
        if mine != theirs and (mine or theirs)
    ]


def version_table(differences: Sequence[VersionDifference]) -> str:
    """The differences as a text table: what, driver, worker, where.

    Example:
        >>> print(version_table([VersionDifference("pyarrow", "17.0.0", "16.1.0", "node-2", False)]))
        what     driver  worker  worker host
        pyarrow  17.0.0  16.1.0  node-2
    """
    rows = [("what", "driver", "worker", "worker host")]
    rows += [(d.name, d.driver, d.worker, d.host) for d in differences]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return ""


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def _satisfied(line: str) -> bool:
    """True when this interpreter satisfies the requirement line (or its markers exclude it)."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        requirement = Requirement(line)
    except InvalidRequirement:
        return False  # the installer will say what is wrong with it
    if requirement.marker is not None and not requirement.marker.evaluate():
        return True
    installed = _version(requirement.name)
    if not installed:
        return False
    if requirement.url:
        return False  # a direct reference: which commit or file is installed is not known
    return not requirement.specifier or requirement.specifier.contains(installed, prereleases=True)


def _holds(check: CodeCheck, ignore_patterns: Sequence[str]) -> bool:
    """True when this worker imports ``check``'s code from files like the driver's."""
    from zoopipe_core.installers import IgnoreRules, code_files

    location: str | None
    if check.module is None:  # a plain directory: it must be on this worker's import path
        on_path = {str(Path(entry or ".").resolve()) for entry in sys.path}
        if str(Path(check.code_path).resolve()) not in on_path:
            return False
        location = check.code_path
    else:
        try:
            spec = importlib.util.find_spec(check.module)
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            return False
        locations = list(spec.submodule_search_locations or [])
        location = locations[0] if locations else spec.origin
    if not location or not Path(location).exists():
        return False
    project = Path(check.project_dir) if check.project_dir else None
    files = code_files([Path(location)], IgnoreRules(ignore_patterns), project)
    return code_fingerprint(files) == check.fingerprint
