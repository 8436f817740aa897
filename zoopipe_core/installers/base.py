"""The installer contract, and what every installer shares: reading TOML, turning requirement
lines into command arguments.

Example:
    >>> command_arguments(["numpy==2.1.2", "--extra-index-url https://example.org"])
    ['numpy==2.1.2', '--extra-index-url', 'https://example.org']
"""

from __future__ import annotations

import abc
import os
import shlex
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


def read_toml(path: Path) -> dict[str, Any]:
    """The TOML file at ``path``; ValueError naming the file when it is not valid TOML."""
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path} is not valid TOML ({exc}); fix the file") from exc


def read_pyproject(project_dir: Path) -> dict[str, Any]:
    """The project's pyproject.toml, or an empty table when it has none."""
    path = project_dir / "pyproject.toml"
    return read_toml(path) if path.is_file() else {}


def unique(items: Iterable[str]) -> list[str]:
    """``items`` without repeats, in their first order."""
    return list(dict.fromkeys(items))


class Installer(abc.ABC):
    """How a project's dependencies are found and installed.

    Subclasses set ``name`` (their registered name) and implement ``requirements``.

    Example:
        >>> class Pinned(Installer):
        ...     name = "pinned"
        ...     def requirements(self, project_dir):
        ...         return ["attrs==24.2.0"]
        >>> Pinned().install_command(["attrs==24.2.0"], target="/tmp/env")[1:]
        ['-m', 'pip', 'install', '--no-input', '--disable-pip-version-check', '--target', '/tmp/env', 'attrs==24.2.0']
    """

    name: ClassVar[str] = ""
    #: True when ``requirements`` come from a lock file: the complete set, each pinned, so an
    #: install takes exactly these (``--no-deps``) and nothing else.
    locked: ClassVar[bool] = False

    @abc.abstractmethod
    def requirements(self, project_dir: str | os.PathLike[str]) -> list[str]:
        """The project's requirements, as requirements.txt lines (pip options included)."""

    def install_command(self, requirements: Sequence[str], target: str | None = None) -> list[str]:
        """The command that installs ``requirements`` into this interpreter's environment, or
        with ``target`` into that directory (to put on ``sys.path``).

        Empty when there is nothing to install. Call it where the command will run: it names
        that machine's interpreter.
        """
        if not requirements:
            return []
        return [
            sys.executable,
            "-m",
            "pip",
            "install",
            *self.install_options(target),
            *command_arguments(requirements),
        ]

    def install_options(self, target: str | None) -> list[str]:
        """The options every pip install command of this installer takes."""
        return ["--no-input", "--disable-pip-version-check", *self.placement_options(target)]

    def placement_options(self, target: str | None) -> list[str]:
        """Where the packages go (``--target``) and, for a lock file's complete set, that
        their dependencies are not resolved again (``--no-deps``): options pip and
        ``uv pip`` share."""
        options = ["--target", target] if target is not None else []
        if self.locked:
            options.append("--no-deps")
        return options


def installer_message(output: str) -> str:
    """The lines of an installer's output that say why it failed: pip's ``ERROR:`` lines, uv's
    ``error:`` lines and the lines of its error tree (U+00D7, U+2570), else the last three.

    Example:
        >>> installer_message("Collecting nope==9.9\\nERROR: No matching distribution found for nope==9.9\\n")
        'ERROR: No matching distribution found for nope==9.9'
    """
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    said = [line for line in lines if line.startswith(("ERROR:", "error:", "\u00d7", "\u2570"))]
    return "; ".join(dict.fromkeys(said or lines[-3:]))


def command_arguments(requirements: Sequence[str]) -> list[str]:
    """Requirement lines as the arguments of an install command."""
    # An option line ("--extra-index-url URL") becomes separate arguments; a requirement
    # ("pkg ; python_version < '3.12'") stays one argument, spaces and all.
    arguments: list[str] = []
    for line in requirements:
        arguments.extend(shlex.split(line) if line.startswith("-") else [line])
    return arguments
