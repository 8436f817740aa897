"""Engines: where parallel work runs. The interface, the task protocol and the built-in
local-process engine; every public name of the package is importable from here.

- ``engine``: :class:`Engine`, the interface every engine implements, and :func:`running_engines`.
- ``tasks``: the task protocol every engine's workers use (:func:`run_call`, :class:`Outcome`,
  :class:`TaskProgress`, :func:`interrupt_call`, :func:`current_worker`).
- ``errors``: :class:`RemoteError`, :class:`WorkerLost` and their helpers.
- ``environment``: :class:`WorkerEnvironment` and :func:`prime_worker`.
- ``shared``: :class:`SharedRef`. ``progress``: :func:`report_progress`, :func:`progress_channel`.
- ``network``: :func:`check_reachable`, for engines that connect to a cluster.
- ``compiled_core``: :func:`native_build` (zoopipe's version and compiled-core build id);
  ``worker_facts``: :func:`gather_facts` (what a worker has) and :func:`needed_environment`;
  ``provisioning``: :func:`startup_environment`, :func:`plan_environment` and
  :func:`check_builds`, what cluster engines do with them at start.
- ``resources``: :func:`task_cpus`. ``main_guard``: :class:`UnguardedMainError`.
- ``multiprocess`` (with ``process_pool`` and ``shared_memory``): :class:`MultiProcessEngine`.

Names are loaded on first use: a task importing :func:`report_progress`, or a pipe reading
:func:`task_cpus`, loads only the module that defines it.

Example:
    >>> from zoopipe_core.engines import Engine, MultiProcessEngine, report_progress
    >>> issubclass(MultiProcessEngine, Engine), MultiProcessEngine.name
    (True, 'multiprocess')
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zoopipe_core.engines.compiled_core import NativeBuild, host_build, native_build
    from zoopipe_core.engines.engine import Engine, running_engines
    from zoopipe_core.engines.environment import (
        WorkerEnvironment,
        preload_on_workers,
        prime_worker,
        worker_preloads,
    )
    from zoopipe_core.engines.errors import (
        RemoteError,
        WorkerLost,
        callable_name,
        exception_type_name,
        rebuild_failure,
        signal_name,
        worker_import_error,
    )
    from zoopipe_core.engines.main_guard import UnguardedMainError, inside_main_guard, refuse_unguarded_main
    from zoopipe_core.engines.multiprocess import MultiProcessEngine
    from zoopipe_core.engines.network import check_reachable, host_port
    from zoopipe_core.engines.progress import ProgressCallback, progress_channel, report_progress
    from zoopipe_core.engines.provisioning import (
        FROM_PROJECT,
        EnvironmentMismatch,
        check_builds,
        check_environment_choice,
        distribution_requirements,
        driver_facts,
        is_empty,
        plan_environment,
        startup_environment,
        zoopipe_code_paths,
    )
    from zoopipe_core.engines.resources import granted_cpus, task_cpus, usable_cpus
    from zoopipe_core.engines.shared import SharedRef
    from zoopipe_core.engines.shared_memory import SharedMemoryRef, free_shared, write_shared
    from zoopipe_core.engines.tasks import (
        CANCEL_GRACE,
        LatestProgress,
        Outcome,
        StopRequested,
        TaskProgress,
        WorkerInfo,
        current_worker,
        interrupt_call,
        interrupt_thread,
        run_call,
        running_calls,
        running_on,
        settle_future,
    )
    from zoopipe_core.engines.worker_facts import (
        CodeCheck,
        VersionDifference,
        WorkerFacts,
        code_checks,
        compare_versions,
        gather_facts,
        needed_environment,
        version_table,
    )

# Every public name, and the module that defines it: loaded on first use, so importing one module
# of the package (a task importing report_progress, a pipe reading task_cpus) loads only that one.
_EXPORTS = {
    "NativeBuild": "zoopipe_core.engines.compiled_core",
    "native_build": "zoopipe_core.engines.compiled_core",
    "host_build": "zoopipe_core.engines.compiled_core",
    "WorkerFacts": "zoopipe_core.engines.worker_facts",
    "CodeCheck": "zoopipe_core.engines.worker_facts",
    "gather_facts": "zoopipe_core.engines.worker_facts",
    "code_checks": "zoopipe_core.engines.worker_facts",
    "needed_environment": "zoopipe_core.engines.worker_facts",
    "compare_versions": "zoopipe_core.engines.worker_facts",
    "version_table": "zoopipe_core.engines.worker_facts",
    "VersionDifference": "zoopipe_core.engines.worker_facts",
    "EnvironmentMismatch": "zoopipe_core.engines.provisioning",
    "FROM_PROJECT": "zoopipe_core.engines.provisioning",
    "startup_environment": "zoopipe_core.engines.provisioning",
    "check_environment_choice": "zoopipe_core.engines.provisioning",
    "plan_environment": "zoopipe_core.engines.provisioning",
    "check_builds": "zoopipe_core.engines.provisioning",
    "is_empty": "zoopipe_core.engines.provisioning",
    "zoopipe_code_paths": "zoopipe_core.engines.provisioning",
    "distribution_requirements": "zoopipe_core.engines.provisioning",
    "driver_facts": "zoopipe_core.engines.provisioning",
    "CANCEL_GRACE": "zoopipe_core.engines.tasks",
    "Engine": "zoopipe_core.engines.engine",
    "LatestProgress": "zoopipe_core.engines.tasks",
    "MultiProcessEngine": "zoopipe_core.engines.multiprocess",
    "Outcome": "zoopipe_core.engines.tasks",
    "ProgressCallback": "zoopipe_core.engines.progress",
    "RemoteError": "zoopipe_core.engines.errors",
    "SharedMemoryRef": "zoopipe_core.engines.shared_memory",
    "write_shared": "zoopipe_core.engines.shared_memory",
    "free_shared": "zoopipe_core.engines.shared_memory",
    "SharedRef": "zoopipe_core.engines.shared",
    "StopRequested": "zoopipe_core.engines.tasks",
    "TaskProgress": "zoopipe_core.engines.tasks",
    "UnguardedMainError": "zoopipe_core.engines.main_guard",
    "WorkerEnvironment": "zoopipe_core.engines.environment",
    "WorkerInfo": "zoopipe_core.engines.tasks",
    "WorkerLost": "zoopipe_core.engines.errors",
    "callable_name": "zoopipe_core.engines.errors",
    "check_reachable": "zoopipe_core.engines.network",
    "current_worker": "zoopipe_core.engines.tasks",
    "exception_type_name": "zoopipe_core.engines.errors",
    "granted_cpus": "zoopipe_core.engines.resources",
    "host_port": "zoopipe_core.engines.network",
    "inside_main_guard": "zoopipe_core.engines.main_guard",
    "interrupt_call": "zoopipe_core.engines.tasks",
    "interrupt_thread": "zoopipe_core.engines.tasks",
    "preload_on_workers": "zoopipe_core.engines.environment",
    "prime_worker": "zoopipe_core.engines.environment",
    "worker_preloads": "zoopipe_core.engines.environment",
    "progress_channel": "zoopipe_core.engines.progress",
    "rebuild_failure": "zoopipe_core.engines.errors",
    "refuse_unguarded_main": "zoopipe_core.engines.main_guard",
    "report_progress": "zoopipe_core.engines.progress",
    "run_call": "zoopipe_core.engines.tasks",
    "running_calls": "zoopipe_core.engines.tasks",
    "running_engines": "zoopipe_core.engines.engine",
    "running_on": "zoopipe_core.engines.tasks",
    "settle_future": "zoopipe_core.engines.tasks",
    "signal_name": "zoopipe_core.engines.errors",
    "task_cpus": "zoopipe_core.engines.resources",
    "usable_cpus": "zoopipe_core.engines.resources",
    "worker_import_error": "zoopipe_core.engines.errors",
}

__all__ = [
    "CANCEL_GRACE",
    "FROM_PROJECT",
    "CodeCheck",
    "Engine",
    "EnvironmentMismatch",
    "LatestProgress",
    "MultiProcessEngine",
    "NativeBuild",
    "Outcome",
    "ProgressCallback",
    "RemoteError",
    "SharedMemoryRef",
    "SharedRef",
    "StopRequested",
    "TaskProgress",
    "UnguardedMainError",
    "VersionDifference",
    "WorkerEnvironment",
    "WorkerFacts",
    "WorkerInfo",
    "WorkerLost",
    "callable_name",
    "check_builds",
    "check_environment_choice",
    "check_reachable",
    "code_checks",
    "compare_versions",
    "current_worker",
    "distribution_requirements",
    "driver_facts",
    "exception_type_name",
    "free_shared",
    "gather_facts",
    "granted_cpus",
    "host_build",
    "host_port",
    "inside_main_guard",
    "interrupt_call",
    "interrupt_thread",
    "is_empty",
    "native_build",
    "needed_environment",
    "plan_environment",
    "preload_on_workers",
    "prime_worker",
    "progress_channel",
    "rebuild_failure",
    "refuse_unguarded_main",
    "report_progress",
    "run_call",
    "running_calls",
    "running_engines",
    "running_on",
    "settle_future",
    "signal_name",
    "startup_environment",
    "task_cpus",
    "usable_cpus",
    "version_table",
    "worker_import_error",
    "worker_preloads",
    "write_shared",
    "zoopipe_code_paths",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'zoopipe_core.engines' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
