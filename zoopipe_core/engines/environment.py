"""What workers need besides the task (:class:`WorkerEnvironment`), and readying a worker for
zoopipe (:func:`prime_worker`)."""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zoopipe_core.installers import CodeFile, IgnoreRules

#: Modules the layers above ask engines to load in their workers (see :func:`preload_on_workers`).
_PRELOADS: list[str] = []


def preload_on_workers(module: str) -> None:
    """Ask engines to import ``module`` in each worker they ready at start (with
    :func:`prime_worker`), so the first task that needs it does not pay for the import.
    Layers above the engines register their worker-side modules when they are imported.

    Example:
        >>> preload_on_workers("json")
        >>> "json" in worker_preloads()
        True
    """
    if module not in _PRELOADS:
        _PRELOADS.append(module)


def worker_preloads() -> tuple[str, ...]:
    """The modules registered with :func:`preload_on_workers`, for :func:`prime_worker`."""
    return tuple(_PRELOADS)


def prime_worker(modules: Sequence[str] = ()) -> int:
    """Load zoopipe's executor (its native module) and ``modules`` (what the driver's
    :func:`worker_preloads` lists) in this worker process; return its pid.

    Cluster engines run it on their workers when they start, so the first pipe or map batch on
    a worker does not pay for the imports, and a worker that cannot import zoopipe_core fails
    ``start`` with that error instead of the first task.

    Example:
        >>> import os
        >>> prime_worker(["json"]) == os.getpid()
        True
    """
    # The native module directly: engines sit below the pipe layer, and this is what costs.
    import zoopipe_core._native  # noqa: F401

    for module in modules:
        importlib.import_module(module)
    return os.getpid()


@dataclasses.dataclass(frozen=True)
class WorkerEnvironment:
    """What workers need besides the task: dependencies, code, ignore rules, environment variables.

    - ``requirements``: requirement lines (``"pandas==2.2.3"``) workers must have installed.
    - ``installer``: the registered installer that installs them (``"uv"``); None lets the
      ``zoopipe_select_installer`` hook choose.
    - ``code_paths``: local code workers import. A directory is put on the workers' import
      path (like Ray's ``working_dir``); a package directory (with ``__init__.py``) or a ``.py``
      module is importable by its name (like Ray's ``py_modules``).
    - ``ignore_file``: the file of ignore patterns for uploads (``.rayignore``); what
      :data:`~zoopipe_core.installers.ALWAYS_EXCLUDED` is left out as well.
    - ``env_vars``: environment variables set in workers before a task runs.
    - ``project_dir``, ``installer_reason``: the project it was resolved from, and why its
      installer was chosen (set by :meth:`from_project`).

    :meth:`from_project` resolves all of it from a project directory.

    Example:
        >>> env = WorkerEnvironment(requirements=["attrs==24.2.0"], env_vars={"MODE": "fast"})
        >>> env.ignore_file, env.code_paths
        ('.rayignore', [])
        >>> WorkerEnvironment(env_vars={"THREADS": 4})
        Traceback (most recent call last):
        ...
        TypeError: env_vars['THREADS'] must be a string, got int 4; pass str(4)
    """

    requirements: list[str] = dataclasses.field(default_factory=list)
    installer: str | None = None
    code_paths: list[str] = dataclasses.field(default_factory=list)
    ignore_file: str | None = ".rayignore"
    env_vars: dict[str, str] = dataclasses.field(default_factory=dict)
    project_dir: str | None = None
    installer_reason: str = ""

    @classmethod
    def from_project(
        cls,
        path: str | os.PathLike[str] = ".",
        *,
        env_vars: dict[str, str] | None = None,
        local_packages: bool = True,
    ) -> WorkerEnvironment:
        """The environment of the project at or above ``path``, resolved once, here: the
        installer (chosen through the ``zoopipe_select_installer`` hook: uv, poetry, pip, or
        manual when there is nothing to install) and why, its requirements (exact from a lock
        file), the code to ship (the project's packages and modules, and the editable and
        path-installed packages of this environment outside it) and the project's
        ``.rayignore``. ``local_packages=False`` leaves the editable packages out.

        Example:
            >>> import pathlib, tempfile
            >>> root = pathlib.Path(tempfile.mkdtemp())
            >>> _ = (root / "requirements.txt").write_text("attrs==24.2.0\\n")
            >>> _ = (root / "jobs.py").write_text("def run(): return 1\\n")
            >>> env = WorkerEnvironment.from_project(root, local_packages=False)
            >>> env.installer, env.requirements, [pathlib.Path(p).name for p in env.code_paths]
            ('pip', ['attrs==24.2.0'], ['jobs.py'])
        """
        from zoopipe_core.installers.project import resolve_project

        project = resolve_project(path, local_packages=local_packages)
        return cls(
            requirements=project.requirements,
            installer=project.installer,
            code_paths=project.code_paths,
            ignore_file=project.ignore_file,
            env_vars=dict(env_vars or {}),
            project_dir=str(project.root),
            installer_reason=project.reason,
        )

    def __post_init__(self) -> None:
        for requirement in self.requirements:
            if not isinstance(requirement, str):
                raise TypeError(
                    f"requirements must be strings like 'pandas==2.2.3', got "
                    f"{type(requirement).__name__} {requirement!r}"
                )
        # Paths may be given as pathlib.Path; store them as str so the value pickles anywhere.
        object.__setattr__(self, "code_paths", [os.fspath(p) for p in self.code_paths])
        for key, value in self.env_vars.items():
            if not isinstance(key, str) or not key or "=" in key:
                raise ValueError(
                    f"env_vars has an invalid variable name {key!r}; use a non-empty string without '='"
                )
            if not isinstance(value, str):
                raise TypeError(
                    f"env_vars[{key!r}] must be a string, got {type(value).__name__} {value!r}; "
                    f"pass str({value!r})"
                )

    def resolved_code_paths(self) -> list[Path]:
        """The code paths as absolute paths; FileNotFoundError names every one that is missing."""
        paths = [Path(p).expanduser().resolve() for p in self.code_paths]
        pairs = zip(self.code_paths, paths, strict=True)
        missing = [str(original) for original, p in pairs if not p.exists()]
        if missing:
            raise FileNotFoundError(
                f"code path(s) {', '.join(repr(m) for m in missing)} do not exist (relative paths "
                f"are taken from {os.getcwd()!r}); pass existing directories, packages or .py "
                "files in WorkerEnvironment.code_paths"
            )
        return paths

    def ignore_patterns(self) -> list[str]:
        """The built-in excludes (:data:`~zoopipe_core.installers.ALWAYS_EXCLUDED`), then the
        patterns of ``ignore_file`` (``.rayignore`` syntax: one per line, ``#`` comments).
        Engines match them with git's rules (:class:`zoopipe_core.installers.IgnoreRules`)."""
        return self.ignore_rules().patterns

    def ignore_rules(self) -> IgnoreRules:
        """:meth:`ignore_patterns` as rules that also say where each pattern is written."""
        from zoopipe_core.installers import IgnoreRules

        return IgnoreRules.for_shipping(self.ignore_file)

    def code_files(self) -> list[CodeFile]:
        """The files of ``code_paths`` that ship (see :func:`zoopipe_core.installers.code_files`)."""
        from zoopipe_core.installers import code_files

        project = Path(self.project_dir).resolve() if self.project_dir else None
        return code_files(self.resolved_code_paths(), self.ignore_rules(), project)

    def explain(self, file: str | os.PathLike[str]) -> tuple[bool, str]:
        """Whether ``file`` ships, and which rule (file and line) decides."""
        from zoopipe_core.installers import explain_file

        project = Path(self.project_dir).resolve() if self.project_dir else None
        return explain_file(file, self.resolved_code_paths(), self.ignore_rules(), project)

    def import_paths(self) -> list[str]:
        """The directories to put at the front of a worker's ``sys.path`` for ``code_paths``."""
        roots = []
        for path in self.resolved_code_paths():
            is_package = path.is_dir() and (path / "__init__.py").is_file()
            root = path.parent if is_package or path.is_file() else path
            roots.append(str(root))
        return list(dict.fromkeys(roots))
