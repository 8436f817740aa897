"""Installing requirements once per machine, for every worker process that runs there.

Worker processes of one host share a cache directory (``ZOOPIPE_CACHE_DIR``, else
``~/.cache/zoopipe``). The first one to need a set of requirements installs it into
``envs/<digest>`` with the project's installer (``pip``/``uv pip install --target``), holding
a file lock; the others wait on the lock and take the result, and a later run with the same
set installs nothing. Each install is appended to ``envs/installs.log``.

A failed install is remembered for its ``attempt`` (one engine start): the other workers of
that start get the same error at once instead of running the installer again; the next start
tries again.

Example:
    >>> import os, tempfile
    >>> os.environ["ZOOPIPE_CACHE_DIR"] = tempfile.mkdtemp()
    >>> done = install_once([], "pip")
    >>> done.installed, os.path.isdir(done.path)
    (False, True)
    >>> del os.environ["ZOOPIPE_CACHE_DIR"]
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from zoopipe_core.installers.base import installer_message

#: Seconds an install may take before it counts as failed (a resolver that never ends, an
#: index that does not answer): never a worker waiting forever.
INSTALL_TIMEOUT = 900.0

#: The file that marks a finished install directory.
COMPLETE = ".zoopipe-complete"


class InstallFailed(RuntimeError):
    """The installer could not install the requirements on this host; the message holds its
    own error lines."""


@dataclasses.dataclass(frozen=True)
class HostInstall:
    """Where a set of requirements is installed on this host, and whether this call did it.

    Example:
        >>> HostInstall("/cache/envs/ab12", installed=True, seconds=4.2).installed
        True
    """

    path: str
    installed: bool
    seconds: float


def cache_dir() -> Path:
    """The host-wide cache of installed requirement sets (``ZOOPIPE_CACHE_DIR``, else
    ``~/.cache/zoopipe``)."""
    configured = os.environ.get("ZOOPIPE_CACHE_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "zoopipe"


def requirements_digest(requirements: Sequence[str], installer: str) -> str:
    """A name for this set on this kind of machine: the requirements, the installer, and the
    interpreter they are installed for.

    Example:
        >>> requirements_digest(["a==1"], "pip") == requirements_digest(["a==1"], "pip")
        True
    """
    identity = {
        "requirements": list(requirements),
        "installer": installer,
        "python": sys.implementation.cache_tag,
        "machine": platform.machine(),
        "system": platform.system(),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]


def install_once(
    requirements: Sequence[str], installer: str, *, attempt: str = "", timeout: float = INSTALL_TIMEOUT
) -> HostInstall:
    """Install ``requirements`` with the registered ``installer`` into this host's cache, unless
    they are there already; the directory to put on ``sys.path``. Raises InstallFailed."""
    from zoopipe_core.plugins import get_installer_class

    envs = cache_dir() / "envs"
    try:
        envs.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InstallFailed(
            f"cannot use {envs} on {socket.gethostname()} for installs ({exc}); set ZOOPIPE_CACHE_DIR "
            "to a writable directory on that machine"
        ) from exc
    digest = requirements_digest(requirements, installer)
    target = envs / digest
    failed = envs / f"{digest}.failed"
    with open(envs / f"{digest}.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the worker installing this set holds it until done
        if (target / COMPLETE).is_file():
            return HostInstall(str(target), installed=False, seconds=0.0)
        if attempt and failed.is_file():
            said_attempt, _, said = failed.read_text().partition("\n")
            if said_attempt == attempt:
                raise InstallFailed(said)
        if not requirements:
            target.mkdir(exist_ok=True)
            (target / COMPLETE).write_text("[]")
            return HostInstall(str(target), installed=False, seconds=0.0)
        partial = envs / f"{digest}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(target, ignore_errors=True)  # an install that died half-way
        command = get_installer_class(installer)().install_command(list(requirements), target=str(partial))
        began = time.monotonic()
        message = _run_installer(command, timeout)
        seconds = time.monotonic() - began
        if message is not None:
            shutil.rmtree(partial, ignore_errors=True)
            failed.write_text(f"{attempt}\n{message}")
            raise InstallFailed(message)
        (partial / COMPLETE).write_text(json.dumps(list(requirements)))
        partial.rename(target)
        failed.unlink(missing_ok=True)
        with open(envs / "installs.log", "a") as log:
            log.write(f"{digest} {socket.gethostname()} pid={os.getpid()} {seconds:.1f}s\n")
        return HostInstall(str(target), installed=True, seconds=seconds)


def _run_installer(command: list[str], timeout: float) -> str | None:
    """Run the install command; None when it succeeded, else what went wrong, the installer's
    own lines first."""
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        return f"`{' '.join(command)}` did not finish within {timeout:g} s on {socket.gethostname()}"
    except OSError as exc:
        return f"`{' '.join(command)}` could not run on {socket.gethostname()}: {exc}"
    if result.returncode == 0:
        return None
    said = installer_message(f"{result.stdout}\n{result.stderr}")
    return f"{said} (`{' '.join(command)}` exited with {result.returncode} on {socket.gethostname()})"
