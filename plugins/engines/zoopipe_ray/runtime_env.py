"""The Ray ``runtime_env`` of a WorkerEnvironment, and the addresses RayEngine connects to."""

from __future__ import annotations

import logging
import tempfile
from typing import Any

from zoopipe_core.engines import WorkerEnvironment, check_reachable, host_port


def runtime_env_for(environment: WorkerEnvironment) -> dict[str, Any]:
    """The Ray ``runtime_env`` that gives Ray workers ``environment``.

    - ``requirements`` → ``"pip"`` (``"uv"`` when the installer is ``"uv"``; nothing for
      ``"manual"``, whose workers are provisioned already).
    - ``code_paths``: a package directory or a ``.py`` file → ``"py_modules"`` (importable by
      name); a plain directory → ``"working_dir"`` (on the workers' ``sys.path``; at most one).
    - ``ignore_file`` patterns → ``"excludes"`` (Ray also honours ``.gitignore`` and
      ``.rayignore`` files inside uploaded directories).
    - ``env_vars`` → ``"env_vars"``.

    Raises FileNotFoundError for a missing code path, ValueError for two plain directories.

    Example:
        >>> env = WorkerEnvironment(requirements=["attrs==24.2.0"], env_vars={"MODE": "fast"},
        ...                         ignore_file=None)
        >>> runtime_env_for(env)
        {'pip': ['attrs==24.2.0'], 'env_vars': {'MODE': 'fast'}}
    """
    runtime_env: dict[str, Any] = {}
    if environment.requirements and environment.installer != "manual":
        field = "uv" if environment.installer == "uv" else "pip"
        runtime_env[field] = list(environment.requirements)
    working_dirs, modules = [], []
    for path in environment.resolved_code_paths():
        is_package = path.is_dir() and (path / "__init__.py").is_file()
        if is_package or path.is_file():
            if path.is_file() and path.suffix != ".py":
                raise ValueError(
                    f"code path {str(path)!r} is a file but not a .py module; pass a .py file, "
                    "a package directory or a directory of modules"
                )
            modules.append(str(path))
        else:
            working_dirs.append(str(path))
    if len(working_dirs) > 1:
        raise ValueError(
            f"RayEngine can put one plain directory on the workers' sys.path (Ray's working_dir), "
            f"got {len(working_dirs)}: {', '.join(working_dirs)}. Pass one directory, or make the "
            "others packages (add __init__.py) so they ship as py_modules"
        )
    if working_dirs:
        runtime_env["working_dir"] = working_dirs[0]
    if modules:
        runtime_env["py_modules"] = modules
    excludes = environment.ignore_patterns() if (working_dirs or modules) else []
    if excludes:
        runtime_env["excludes"] = excludes
    if environment.env_vars:
        runtime_env["env_vars"] = dict(environment.env_vars)
    return runtime_env


def upload_code(runtime_env: dict[str, Any], log: logging.Logger) -> dict[str, Any]:
    """``runtime_env`` with its local code paths uploaded to the cluster (gcs:// URIs).

    Ray accepts local directories only in ``ray.init``; for per-task environments they are
    uploaded the way ``ray.init`` does it, honouring ``excludes`` and the ``.gitignore`` and
    ``.rayignore`` files inside them. Needs a connected Ray when there is code to upload.

    Example:
        >>> upload_code({"env_vars": {"MODE": "fast"}}, logging.getLogger("example"))
        {'env_vars': {'MODE': 'fast'}}
    """
    env = dict(runtime_env)
    if "working_dir" not in env and "py_modules" not in env:
        return env
    from ray._private.runtime_env.py_modules import upload_py_modules_if_needed
    from ray._private.runtime_env.working_dir import upload_working_dir_if_needed

    with tempfile.TemporaryDirectory(prefix="zoopipe-ray-upload-") as scratch:
        for upload in (upload_py_modules_if_needed, upload_working_dir_if_needed):
            env = upload(env, include_gitignore=True, scratch_dir=scratch, logger=log)
    env.pop("excludes", None)
    return env


def parse_address(address: str) -> tuple[str, int] | None:
    """(host, port) of a ``host:port`` or ``ray://host:port`` address; None for ``"auto"``.

    Example:
        >>> parse_address("ray://10.0.0.5:10001"), parse_address("auto")
        (('10.0.0.5', 10001), None)
    """
    if address in ("auto", "local"):
        return None
    target = host_port(address)
    if target is None:
        raise ValueError(
            f"RayEngine address {address!r} is not 'host:port', 'ray://host:port' or 'auto'; "
            "pass the head node's GCS address (e.g. '10.0.0.5:6379') or None for a local Ray"
        )
    return target


def check_address(address: str, timeout: float) -> None:
    """ConnectionError unless a Ray cluster answers at ``address`` within ``timeout`` s."""
    if parse_address(address) is None:
        return
    check_reachable(
        "RayEngine",
        "a Ray cluster",
        address,
        timeout,
        "Check that the cluster is running (`ray status` on its head node) and that this machine "
        "can reach that host and port; pass address=None to start a local Ray instead",
    )
