"""Shipping a WorkerEnvironment to Dask workers: code paths as zip archives, requirements as
distributed's ``PipInstall`` plugin. Imports ``distributed`` only inside functions."""

from __future__ import annotations

import hashlib
import io
import zipfile
from typing import Any

from zoopipe_core.engines import WorkerEnvironment
from zoopipe_core.installers import IgnoreRules


def code_archives(environment: WorkerEnvironment) -> dict[str, bytes]:
    """Zip archives (name → bytes) that make ``environment.code_paths`` importable on workers.

    A plain directory is zipped with its contents at the archive's root (like Ray's
    ``working_dir``); a package directory keeps its name, and a ``.py`` file is stored alone
    (like ``py_modules``). Files matching ``ignore_file`` patterns (git's rules) are left out.

    Example:
        >>> import tempfile, zipfile, io, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "tool.py").write_text("X = 1\\n")
        >>> [(name, data)] = code_archives(WorkerEnvironment(code_paths=[str(folder / "tool.py")])).items()
        >>> zipfile.ZipFile(io.BytesIO(data)).namelist()
        ['tool.py']
    """
    rules = IgnoreRules(environment.ignore_patterns())
    archives: dict[str, bytes] = {}
    for path in environment.resolved_code_paths():
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            if path.is_file():
                archive.write(path, path.name)
            else:
                is_package = (path / "__init__.py").is_file()
                root = path.parent if is_package else path
                for full in rules.files(path):
                    archive.write(full, full.relative_to(root).as_posix())
        data = buffer.getvalue()
        digest = hashlib.sha256(data).hexdigest()[:16]
        archives[f"{path.stem or 'code'}-{digest}.zip"] = data
    return archives


def requirements_plugin(environment: WorkerEnvironment) -> Any:
    """distributed's ``PipInstall`` worker plugin for the requirements, or None.

    None when there are no requirements or the installer is ``"manual"`` (workers are
    provisioned already). Workers run ``pip install`` when the plugin is registered.

    Example:
        >>> requirements_plugin(WorkerEnvironment()) is None
        True
    """
    if not environment.requirements or environment.installer == "manual":
        return None
    from distributed.diagnostics.plugin import PipInstall

    return PipInstall(packages=list(environment.requirements), restart_workers=False)
