"""From an environment spec to what a cluster's workers still need, written once for every
cluster engine.

An engine's ``environment`` argument chooses the spec (:func:`startup_environment`): by default
the project the engine is started in (``WorkerEnvironment.from_project``), an explicit
:class:`WorkerEnvironment`, or None for none. At start the engine runs
:func:`~zoopipe_core.engines.worker_facts.gather_facts` once per node and hands the results to
:func:`plan_environment`: versions that differ from the driver's are reported (an error where
they break pickling), and the spec is narrowed to what some node lacks, with zoopipe's own
packages (its compiled core included, as files) added when a node runs another zoopipe build.
After the workers are prepared, :func:`check_builds` is the handshake: every worker must run the
driver's zoopipe build.

Example:
    >>> from zoopipe_core.engines import WorkerEnvironment
    >>> startup_environment(None) is None
    True
    >>> env = WorkerEnvironment(env_vars={"MODE": "fast"}, ignore_file=None)
    >>> startup_environment(env) is env
    True
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zoopipe_core.engines.compiled_core import NativeBuild, native_build
from zoopipe_core.engines.environment import WorkerEnvironment
from zoopipe_core.engines.worker_facts import (
    WorkerFacts,
    compare_versions,
    gather_facts,
    needed_environment,
    version_table,
)

#: The ``environment`` argument's default: the project the engine is started in.
FROM_PROJECT = "project"

#: zoopipe's import packages shipped to workers that run another zoopipe build (or none).
ZOOPIPE_PACKAGES = ("zoopipe_core", "zoopipe_ray", "zoopipe_dask", "zoopipe_s3", "zoopipe_duckdb")

_log = logging.getLogger(__name__)


class EnvironmentMismatch(RuntimeError):
    """The workers run versions that break the driver's tasks (the message holds the table)."""


def check_environment_choice(choice: Any, engine: str) -> None:
    """TypeError/ValueError at construction for an ``environment`` argument that is none of
    ``"project"``, a WorkerEnvironment or None."""
    if choice is None or choice == FROM_PROJECT or isinstance(choice, WorkerEnvironment):
        return
    raise ValueError(
        f"{engine}(environment={choice!r}): pass 'project' (the default: the project the engine "
        "is started in), a WorkerEnvironment, or None (workers are provisioned already)"
    )


def startup_environment(choice: Any, cwd: str | os.PathLike[str] | None = None) -> WorkerEnvironment | None:
    """The spec an engine prepares its workers with at start: ``choice`` itself when it is a
    WorkerEnvironment; for ``"project"``, the project at or above ``cwd`` (default: the current
    directory), or None outside any project; None for None."""
    if choice is None or isinstance(choice, WorkerEnvironment):
        return choice
    from zoopipe_core.installers import find_project_root

    root = find_project_root(cwd or os.getcwd())
    return None if root is None else WorkerEnvironment.from_project(root)


def driver_facts() -> WorkerFacts:
    """This process's own facts, to compare the workers' with."""
    return gather_facts([], [])


def plan_environment(
    spec: WorkerEnvironment,
    facts: Sequence[WorkerFacts] | None,
    engine: str,
    log: logging.Logger | None = None,
) -> WorkerEnvironment:
    """What of ``spec`` the nodes described by ``facts`` still need; ``facts`` None: the workers
    could not even import zoopipe_core to report them, so they get ``spec`` whole, zoopipe's
    packages and zoopipe-core's own requirements.

    Raises :class:`EnvironmentMismatch` (with a table of driver and worker values) when a node
    runs another Python minor version or pydantic major version; logs other differences as a
    warning. A node running another zoopipe build (or none) gets zoopipe's packages shipped as
    code, compiled core included.
    """
    log = log or _log
    if facts is None:
        return dataclasses.replace(
            spec,
            requirements=list(
                dict.fromkeys([*spec.requirements, *distribution_requirements("zoopipe-core")])
            ),
            code_paths=list(dict.fromkeys([*spec.code_paths, *zoopipe_code_paths()])),
        )
    mine = driver_facts()
    differences = [d for fact in facts for d in compare_versions(mine, fact)]
    shipped_zoopipe = any(d.name.startswith("zoopipe") for d in differences)
    breaking = [d for d in differences if d.fatal and not d.name.startswith("zoopipe")]
    if breaking:
        raise EnvironmentMismatch(
            f"{engine}: the workers cannot run this driver's tasks; these differ:\n"
            f"{version_table(breaking)}\nRun the driver and the workers with the same Python "
            "minor version and pydantic major version (a cluster image or environment built "
            "from the same lock file)"
        )
    others = [d for d in differences if not d.name.startswith("zoopipe")]
    if others:
        log.warning("%s: the workers run other versions than this driver:\n%s", engine, version_table(others))
    needed = needed_environment(spec, facts)
    if shipped_zoopipe:
        extra = [path for path in zoopipe_code_paths() if path not in needed.code_paths]
        needed = dataclasses.replace(needed, code_paths=[*needed.code_paths, *extra])
    return needed


def zoopipe_code_paths() -> list[str]:
    """The directories of zoopipe's import packages in this environment (the compiled core is a
    file inside ``zoopipe_core``): what a worker without this build gets shipped."""
    paths = []
    for name in ZOOPIPE_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            paths.append(str(Path(next(iter(spec.submodule_search_locations))).resolve()))
    return paths


def is_empty(environment: WorkerEnvironment) -> bool:
    """True when there is nothing to install, ship or set."""
    return not (environment.requirements or environment.code_paths or environment.env_vars)


def check_builds(engine: str, builds: Sequence[tuple[str, NativeBuild]]) -> None:
    """The start-up handshake: EnvironmentMismatch, with a table of driver and worker values
    and what to do, unless every worker (``(host, build)`` pairs) runs this driver's zoopipe
    version and compiled-core build."""
    mine = native_build()
    rows = []
    for host, build in builds:
        if build.version != mine.version:
            rows.append(("zoopipe-core", mine.version, build.version or "-", host))
        if build.build_id != mine.build_id:
            rows.append(("zoopipe_core._native build", mine.build_id, build.build_id or "-", host))
    if not rows:
        return
    from zoopipe_core.engines.worker_facts import VersionDifference

    table = version_table([VersionDifference(n, d, w, h, True) for n, d, w, h in dict.fromkeys(rows)])
    raise EnvironmentMismatch(
        f"{engine}: workers run another zoopipe build than this driver:\n{table}\nLet the engine "
        "ship this build (the default environment='project' does, or add zoopipe's packages to "
        "WorkerEnvironment.code_paths), or install the same zoopipe-core wheel on the workers"
    )


def distribution_requirements(distribution: str) -> list[str]:
    """The requirements ``distribution`` declares, without its extras' (what a worker needs
    beside zoopipe's shipped packages)."""
    try:
        declared = importlib.metadata.requires(distribution) or []
    except importlib.metadata.PackageNotFoundError:
        return []
    return [line for line in declared if "extra ==" not in line]
