"""Shipping a WorkerEnvironment to Dask workers: code paths as zip archives, and the resource
tag of workers whose requirements are installed. Imports ``distributed`` only inside functions."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

from zoopipe_core.engines import WorkerEnvironment
from zoopipe_core.installers import CodeFile


def code_archives(environment: WorkerEnvironment) -> dict[str, bytes]:
    """Zip archives (name → bytes) that make ``environment.code_paths`` importable on workers.

    The files are ``environment.code_files()``: what ``zoopipe env`` lists and Ray ships, the
    ignore rules (built-in excludes, the project's ``.rayignore``) applied as from the project's
    root. A plain directory's contents sit at the archive's root (like Ray's ``working_dir``); a
    package directory keeps its name, and a ``.py`` file is stored alone (like ``py_modules``).

    Example:
        >>> import tempfile, zipfile, io, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "tool.py").write_text("X = 1\\n")
        >>> [(name, data)] = code_archives(WorkerEnvironment(code_paths=[str(folder / "tool.py")])).items()
        >>> zipfile.ZipFile(io.BytesIO(data)).namelist()
        ['tool.py']
    """
    by_path: dict[Path, list[CodeFile]] = {path: [] for path in environment.resolved_code_paths()}
    for file in environment.code_files():
        by_path.setdefault(file.code_path, []).append(file)
    archives: dict[str, bytes] = {}
    for path, files in by_path.items():
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in files:
                archive.write(file.source, file.name)
        data = buffer.getvalue()
        digest = hashlib.sha256(data).hexdigest()[:16]
        archives[f"{path.stem or 'code'}-{digest}.zip"] = data
    return archives


def environment_tag(environment: WorkerEnvironment) -> str:
    """The Dask resource a worker declares once ``environment``'s requirements are installed
    there, and the engine's tasks require: the same name for the same requirements.

    Example:
        >>> environment_tag(WorkerEnvironment(requirements=["attrs==24.2.0"])).startswith("zoopipe-env-")
        True
    """
    from zoopipe_core.installers import requirements_digest

    return f"zoopipe-env-{requirements_digest(environment.requirements, environment.installer or 'pip')}"
