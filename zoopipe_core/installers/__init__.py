"""Dependency installers: which requirements a project needs, and the command that installs them.

An engine preparing workers asks the installer of the user's project for ``requirements()``
(requirements.txt lines) and runs ``install_command(...)`` where the workers live, or hands the
requirements to the cluster (Ray's ``runtime_env``). The project's code ships with its ignore
rules (:mod:`zoopipe_core.installers.ignore`, git's rules).

Modules: ``base`` (the :class:`Installer` contract), ``detection`` (:func:`detect_installer`),
one per installer (``pip``, ``uv``, ``poetry``, ``manual``), ``project`` (a project's root,
installer, requirements and code: :func:`resolve_project`), ``ignore`` (git's rules) and
``shipping`` (the files that ship, their weight, why one ships) and ``host_install``
(requirements installed once per machine, for engines whose cluster has no installer).

Example:
    >>> import pathlib, tempfile
    >>> project = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (project / "requirements.txt").write_text("requests==2.32.3\\n")
    >>> detect_installer(project)
    'pip'
    >>> PipInstaller().requirements(project)
    ['requests==2.32.3']
"""

from zoopipe_core.installers.base import Installer, installer_message
from zoopipe_core.installers.detection import detect_installer, explain_installer
from zoopipe_core.installers.host_install import HostInstall, InstallFailed, install_once, requirements_digest
from zoopipe_core.installers.ignore import ALWAYS_EXCLUDED, Decision, IgnoreRules, read_ignore_file
from zoopipe_core.installers.manual import ManualInstaller
from zoopipe_core.installers.pip import PipInstaller
from zoopipe_core.installers.poetry import PoetryInstaller
from zoopipe_core.installers.project import Project, find_project_root, resolve_project
from zoopipe_core.installers.shipping import CodeFile, Shipment, code_files, explain_file, left_out
from zoopipe_core.installers.uv import UvInstaller

__all__ = [
    "ALWAYS_EXCLUDED",
    "CodeFile",
    "Decision",
    "HostInstall",
    "IgnoreRules",
    "InstallFailed",
    "Installer",
    "ManualInstaller",
    "PipInstaller",
    "PoetryInstaller",
    "Project",
    "Shipment",
    "UvInstaller",
    "code_files",
    "detect_installer",
    "explain_file",
    "explain_installer",
    "find_project_root",
    "install_once",
    "installer_message",
    "left_out",
    "read_ignore_file",
    "requirements_digest",
    "resolve_project",
]
