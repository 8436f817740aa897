"""The Ray ``runtime_env`` of a WorkerEnvironment, and the addresses RayEngine connects to."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from zoopipe_core.engines import WorkerEnvironment, check_reachable, host_port
from zoopipe_core.installers import left_out
from zoopipe_ray.auth import check_token_auth


def runtime_env_for(environment: WorkerEnvironment) -> dict[str, Any]:
    """The Ray ``runtime_env`` that gives Ray workers ``environment`` (its code paths still
    local: :func:`upload_code` uploads them).

    - ``requirements`` → ``"pip"`` (``"uv"`` when the installer is ``"uv"``; nothing for
      ``"manual"``, whose workers are provisioned already).
    - ``code_paths``: a package directory or a ``.py`` file → ``"py_modules"`` (importable by
      name); a plain directory → ``"working_dir"`` (on the workers' ``sys.path``; at most one).
    - ``env_vars`` → ``"env_vars"``.

    What ships of each code path is decided by the environment's ignore rules (see
    :func:`upload_code`), not by Ray's own reading of ignore files.

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
    if environment.env_vars:
        runtime_env["env_vars"] = dict(environment.env_vars)
    return runtime_env


def exact_excludes(environment: WorkerEnvironment, code_path: str | Path) -> list[str]:
    """Ray ``excludes`` naming exactly what the environment's ignore rules leave out of
    ``code_path``: anchored paths, so Ray (whatever its version, and whatever base it matches
    patterns from) ships what ``zoopipe env`` lists.

    Example:
        >>> import pathlib, tempfile
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> for name in ("pkg/__init__.py", "pkg/__pycache__/m.pyc"):
        ...     (root / name).parent.mkdir(parents=True, exist_ok=True); _ = (root / name).write_text("")
        >>> exact_excludes(WorkerEnvironment(ignore_file=None), root / "pkg")
        ['/__pycache__']
    """
    path = Path(code_path)
    project = Path(environment.project_dir).resolve() if environment.project_dir else None
    return ["/" + p.relative_to(path).as_posix() for p in left_out(path, environment.ignore_rules(), project)]


def ray_package_limit() -> int:
    """The most bytes Ray uploads as one package (``RAY_max_grpc_message_size``, 512 MiB)."""
    try:
        from ray._private.runtime_env.packaging import GCS_STORAGE_MAX_SIZE
    except ImportError:  # pragma: no cover - the limit's home moved
        return 512 * 1024**2
    return int(GCS_STORAGE_MAX_SIZE)


def check_upload_size(environment: WorkerEnvironment, limit: int | None = None) -> None:
    """ValueError before anything is uploaded when a code path would ship more than Ray's
    package limit: the file count, the total, the largest files and the ignore lines that
    would leave them out. Sizes are before compression (Ray's limit is on the zip)."""
    from zoopipe_core.installers import Shipment

    limit = ray_package_limit() if limit is None else limit
    files = environment.code_files()
    for code_path in environment.resolved_code_paths():
        own = [f for f in files if f.code_path == code_path]
        summary = Shipment.of(own, top=5)
        if summary.bytes < limit:
            continue
        largest = "; ".join(f"{name} ({_mib(size)})" for name, size in summary.largest)
        rules = ", ".join(dict.fromkeys(_rule_for(name) for name, _ in summary.largest))
        where = environment.ignore_file or str(Path(environment.project_dir or ".") / ".rayignore")
        raise ValueError(
            f"RayEngine would upload {summary.files} files, {_mib(summary.bytes)}, from the code path "
            f"{code_path}: over Ray's limit of {_mib(limit)} per package (sizes before "
            f"compression). The largest: {largest}. Leave them out with lines such as {rules} in "
            f"{where} (gitignore syntax), and check with `zoopipe env --explain FILE`"
        )


def _rule_for(name: str) -> str:
    parts = name.split("/")
    if len(parts) > 2:  # inside a folder of the package: that folder
        return "/".join(parts[1:-1]) + "/"
    suffix = Path(name).suffix
    return f"*{suffix}" if suffix else parts[-1]


def _mib(size: int) -> str:
    return f"{size / 1024**2:.1f} MiB"


def upload_code(
    runtime_env: dict[str, Any], environment: WorkerEnvironment, log: logging.Logger
) -> dict[str, Any]:
    """``runtime_env`` with its local code paths uploaded to the cluster (gcs:// URIs).

    Ray accepts local directories only in ``ray.init``; for per-task environments they are
    uploaded the way ``ray.init`` does it, each code path with the :func:`exact_excludes` of the
    environment's ignore rules (Ray's own reading of ``.gitignore`` files is off: the rules
    decide). Needs a connected Ray when there is code to upload.

    Example:
        >>> upload_code({"env_vars": {"MODE": "fast"}}, WorkerEnvironment(), logging.getLogger("example"))
        {'env_vars': {'MODE': 'fast'}}
    """
    env = dict(runtime_env)
    if "working_dir" not in env and "py_modules" not in env:
        return env
    from ray._private.runtime_env.py_modules import upload_py_modules_if_needed
    from ray._private.runtime_env.working_dir import upload_working_dir_if_needed

    with tempfile.TemporaryDirectory(prefix="zoopipe-ray-upload-") as scratch:
        if "working_dir" in env:
            one = {
                "working_dir": env["working_dir"],
                "excludes": exact_excludes(environment, env["working_dir"]),
            }
            env["working_dir"] = upload_working_dir_if_needed(
                one, include_gitignore=False, scratch_dir=scratch, logger=log
            )["working_dir"]
        uploaded = []
        for module in env.get("py_modules", []):
            one = {"py_modules": [module], "excludes": exact_excludes(environment, module)}
            uploaded.extend(
                upload_py_modules_if_needed(one, include_gitignore=False, scratch_dir=scratch, logger=log)[
                    "py_modules"
                ]
            )
        if uploaded:
            env["py_modules"] = uploaded
    return env


def merge_runtime_envs(
    ours: dict[str, Any], theirs: dict[str, Any] | None
) -> tuple[dict[str, Any], list[str]]:
    """``ours`` (the engine's) merged with ``theirs`` (the user's: ``RayEngine(runtime_env=...)``
    or the one Ray was initialised with), theirs winning where both set a value, and a sentence
    for each of ours that was set aside. ``env_vars`` merge by variable and ``py_modules`` add
    up; any other field both set is theirs.

    Example:
        >>> merged, conflicts = merge_runtime_envs(
        ...     {"pip": ["attrs==24.2.0"], "env_vars": {"A": "1", "B": "2"}, "py_modules": ["gcs://m1"]},
        ...     {"pip": ["numpy"], "env_vars": {"B": "3"}, "py_modules": ["gcs://m2"]})
        >>> merged
        {'pip': ['numpy'], 'env_vars': {'A': '1', 'B': '3'}, 'py_modules': ['gcs://m2', 'gcs://m1']}
        >>> conflicts
        ["runtime_env 'pip': yours (['numpy']) is used; the project's (['attrs==24.2.0']) is not", "runtime_env 'env_vars' 'B': yours ('3') is used; the project's ('2') is not"]
    """
    merged = dict(theirs or {})
    conflicts: list[str] = []
    for key, value in ours.items():
        if key not in merged or merged[key] == value:
            merged[key] = value
        elif key == "env_vars":
            variables = dict(value)
            for name, their_value in merged[key].items():
                if name in variables and variables[name] != their_value:
                    conflicts.append(
                        f"runtime_env 'env_vars' {name!r}: yours ({their_value!r}) is used; "
                        f"the project's ({variables[name]!r}) is not"
                    )
                variables[name] = their_value
            merged[key] = variables
        elif key == "py_modules":
            merged[key] = [*merged[key], *(m for m in value if m not in merged[key])]
        else:
            conflicts.append(
                f"runtime_env {key!r}: yours ({merged[key]!r}) is used; the project's ({value!r}) is not"
            )
    return merged, conflicts


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
    """ConnectionError unless a Ray cluster answers at ``address`` within ``timeout`` s, or when
    it uses token authentication and this process has no token it accepts."""
    target = parse_address(address)
    if target is None:
        return
    check_reachable(
        "RayEngine",
        "a Ray cluster",
        address,
        timeout,
        "Check that the cluster is running (`ray status` on its head node) and that this machine "
        "can reach that host and port; pass address=None to start a local Ray instead",
    )
    if not address.startswith("ray://"):  # Ray Client's server is not the GCS
        check_token_auth(address, target[0], target[1], timeout)
