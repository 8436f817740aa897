"""The ``manual`` installer: exactly the requirements it is given."""

from __future__ import annotations

import os
from collections.abc import Iterable

from zoopipe_core.installers.base import Installer


class ManualInstaller(Installer):
    """Exactly the requirements it is given, whatever the project holds.

    Example:
        >>> installer = ManualInstaller(["numpy==2.1.2", "--extra-index-url https://example.org"])
        >>> installer.requirements(".")
        ['numpy==2.1.2', '--extra-index-url https://example.org']
        >>> installer.install_command(installer.requirements("."))[-3:]
        ['numpy==2.1.2', '--extra-index-url', 'https://example.org']
    """

    name = "manual"

    def __init__(self, requirements: Iterable[str] = ()) -> None:
        if isinstance(requirements, str):
            raise TypeError("pass a list of requirements, not one string: ManualInstaller([...])")
        self._requirements = list(requirements)

    def requirements(self, project_dir: str | os.PathLike[str]) -> list[str]:
        return list(self._requirements)
