"""Dependency installers: which one a project gets (and a plugin overriding that choice), and
the requirements pip, uv, poetry and the manual installer read from a project."""

from __future__ import annotations

import json
import os
import stat
import sys

import pytest
from plugin_fakes import plugin_module

from zoopipe_core import plugins
from zoopipe_core.installers import (
    ManualInstaller,
    PipInstaller,
    PoetryInstaller,
    UvInstaller,
    detect_installer,
)

pytestmark = pytest.mark.usefixtures("fresh_plugins")  # a fresh registry per test (tests/plugin_fakes.py)


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"uv.lock": "version = 1\n", "requirements.txt": "x\n"}, "uv"),
        ({"poetry.lock": ""}, "poetry"),
        ({"pyproject.toml": '[tool.poetry]\nname = "p"\n'}, "poetry"),
        ({"requirements.txt": "attrs\n"}, "pip"),
        ({"pyproject.toml": '[project]\nname = "p"\nversion = "1"\n'}, "pip"),
        ({"README.md": "nothing to install"}, None),
    ],
)
def test_select_installer(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert plugins.select_installer(tmp_path) == expected
    assert detect_installer(tmp_path) == expected


def test_a_plugin_overrides_the_builtin_installer_choice(tmp_path):
    (tmp_path / "requirements.txt").write_text("attrs\n")

    def zoopipe_select_installer(project_dir):
        return "manual" if (project_dir / "requirements.txt").exists() else None

    module = plugin_module("chooser", zoopipe_select_installer=zoopipe_select_installer)
    plugins.register_plugin(module, "chooser")
    assert plugins.select_installer(tmp_path) == "manual"


# --------------------------------------------------------------------------- installers


def test_pip_installer_reads_requirements_and_pyproject(tmp_path):
    (tmp_path / "base.txt").write_text("attrs==24.2.0  # pinned\n")
    (tmp_path / "requirements.txt").write_text(
        "# tools\n-r base.txt\n\nrequests>=2 ; python_version >= '3.10'\n"
        "--extra-index-url https://download.pytorch.org/whl/cpu\nnumpy\\\n==2.1.2\n"
    )
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "demo"\nversion = "1"\ndependencies = ["numpy==2.1.2", "pyyaml>=6"]\n'
    )
    installer = PipInstaller()
    requirements = installer.requirements(tmp_path)
    assert requirements == [
        "attrs==24.2.0",
        "requests>=2 ; python_version >= '3.10'",
        "--extra-index-url https://download.pytorch.org/whl/cpu",
        "numpy==2.1.2",
        "pyyaml>=6",
    ]
    assert installer.install_command(requirements) == [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--no-input",
        "--disable-pip-version-check",
        "attrs==24.2.0",
        "requests>=2 ; python_version >= '3.10'",
        "--extra-index-url",
        "https://download.pytorch.org/whl/cpu",
        "numpy==2.1.2",
        "pyyaml>=6",
    ]
    assert installer.install_command([]) == []


def test_pip_installer_explains_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"neither requirements.txt nor a \[project\]"):
        PipInstaller().requirements(tmp_path)


def test_pip_installer_detects_include_cycles(tmp_path):
    (tmp_path / "requirements.txt").write_text("-r requirements.txt\n")
    with pytest.raises(ValueError, match="includes itself"):
        PipInstaller().requirements(tmp_path)


UV_LOCK = """
version = 1
requires-python = ">=3.10"

[[package]]
name = "demo"
version = "0.1.0"
source = { editable = "." }
dependencies = [
    { name = "requests", extra = ["socks"] },
    { name = "colorama", marker = "sys_platform == 'win32'" },
    { name = "mylib" },
]

[package.dev-dependencies]
dev = [{ name = "pytest" }]

[[package]]
name = "requests"
version = "2.32.3"
source = { registry = "https://pypi.org/simple" }
dependencies = [{ name = "idna" }]

[package.optional-dependencies]
socks = [{ name = "pysocks" }]

[[package]]
name = "idna"
version = "3.10"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "pysocks"
version = "1.7.1"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "colorama"
version = "0.4.6"
source = { registry = "https://pypi.org/simple" }
dependencies = [{ name = "idna" }]

[[package]]
name = "mylib"
version = "0.2.0"
source = { git = "https://github.com/example/mylib?rev=main#0123abc" }

[[package]]
name = "pytest"
version = "8.3.3"
source = { registry = "https://pypi.org/simple" }
"""


def test_uv_installer_reads_the_lock_file(tmp_path):
    (tmp_path / "uv.lock").write_text(UV_LOCK)
    assert UvInstaller(use_uv_cli=False).requirements(tmp_path) == [
        "requests==2.32.3",
        "colorama==0.4.6 ; (sys_platform == 'win32')",
        "mylib @ git+https://github.com/example/mylib@0123abc",
        "idna==3.10",
        "pysocks==1.7.1",
    ]


def fake_uv(tmp_path, monkeypatch, output, exit_code=0):
    """A `uv` executable on PATH that records its arguments and prints ``output``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "uv"
    arguments_file = str(tmp_path / "uv-args.json")
    script.write_text(
        f"#!{sys.executable}\nimport json, pathlib, sys\n"
        f"pathlib.Path({arguments_file!r}).write_text(json.dumps(sys.argv[1:]))\n"
        f"sys.stdout.write({output!r})\nsys.stderr.write('uv says no')\nsys.exit({exit_code})\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return script


def test_uv_installer_uses_uv_export(tmp_path, monkeypatch):
    project = tmp_path / "project"
    project.mkdir()
    (project / "uv.lock").write_text(UV_LOCK)
    exported = "# This file was autogenerated by uv\nidna==3.10\n    # via requests\nrequests==2.32.3\n"
    uv = fake_uv(tmp_path, monkeypatch, exported)
    installer = UvInstaller()
    assert installer.requirements(project) == ["idna==3.10", "requests==2.32.3"]
    arguments = json.loads((tmp_path / "uv-args.json").read_text())
    assert arguments[:4] == ["export", "--no-hashes", "--format", "requirements-txt"]
    # A lock file's set is complete and pinned: exactly it, no dependency resolution.
    assert installer.install_command(["idna==3.10"], target="/envs/a") == [
        str(uv),
        "pip",
        "install",
        "--python",
        sys.executable,
        "--target",
        "/envs/a",
        "--no-deps",
        "idna==3.10",
    ]


def test_uv_export_failure_is_reported(tmp_path, monkeypatch):
    project = tmp_path / "project"
    project.mkdir()
    (project / "uv.lock").write_text(UV_LOCK)
    fake_uv(tmp_path, monkeypatch, "", exit_code=2)
    with pytest.raises(RuntimeError, match=r"exit 2.*uv says no"):
        UvInstaller().requirements(project)


def test_uv_installer_needs_a_lock_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="uv lock"):
        UvInstaller(use_uv_cli=False).requirements(tmp_path)


def test_poetry_installer_reads_main_group(tmp_path):
    (tmp_path / "poetry.lock").write_text(
        """
[[package]]
name = "idna"
version = "3.10"
optional = false
groups = ["main"]

[[package]]
name = "pytest"
version = "8.3.3"
optional = false
groups = ["dev"]

[[package]]
name = "colorama"
version = "0.4.6"
optional = false
groups = ["main"]
markers = "sys_platform == \\"win32\\""

[[package]]
name = "fancy"
version = "1.0"
optional = true
groups = ["main"]

[[package]]
name = "mylib"
version = "0.2.0"
optional = false
groups = ["main"]

[package.source]
type = "git"
url = "https://github.com/example/mylib.git"
reference = "main"
resolved_reference = "0123abc"

[[package]]
name = "local-pkg"
version = "0.1.0"
optional = false
groups = ["main"]

[package.source]
type = "directory"
url = "libs/local-pkg"

[[package]]
name = "legacy"
version = "1.1"
category = "main"
optional = false

[[package]]
name = "legacy-dev"
version = "1.1"
category = "dev"
optional = false
"""
    )
    assert PoetryInstaller().requirements(tmp_path) == [
        "idna==3.10",
        'colorama==0.4.6 ; sys_platform == "win32"',
        "mylib @ git+https://github.com/example/mylib.git@0123abc",
        "legacy==1.1",
    ]


def test_poetry_installer_needs_a_lock_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="poetry lock"):
        PoetryInstaller().requirements(tmp_path)


def test_manual_installer():
    installer = ManualInstaller(["torch==2.13.0", "--index-url https://download.pytorch.org/whl/cpu"])
    assert installer.requirements("anywhere") == [
        "torch==2.13.0",
        "--index-url https://download.pytorch.org/whl/cpu",
    ]
    assert installer.install_command(installer.requirements("."))[-3:] == [
        "torch==2.13.0",
        "--index-url",
        "https://download.pytorch.org/whl/cpu",
    ]
    with pytest.raises(TypeError, match="not one string"):
        ManualInstaller("torch")


def test_installer_classes_resolved_by_name_work(tmp_path):
    (tmp_path / "requirements.txt").write_text("attrs\n")
    name = plugins.select_installer(tmp_path)
    installer = plugins.get_installer_class(name)()
    assert installer.requirements(tmp_path) == ["attrs"]
