"""WorkerEnvironment.from_project and `zoopipe env`: one spec, resolved from a project's files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from plugin_fakes import plugin_module

from zoopipe_core import plugins
from zoopipe_core.cli.main import main
from zoopipe_core.engines import WorkerEnvironment
from zoopipe_core.installers import explain_installer, find_project_root
from zoopipe_core.installers.project import resolve_project

pytestmark = pytest.mark.usefixtures("fresh_plugins")


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


@pytest.fixture(autouse=True)
def no_active_environment(monkeypatch):
    """Detection also reads the active environment: the tests decide it."""
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    monkeypatch.delenv("POETRY_ACTIVE", raising=False)


def test_the_installer_comes_with_its_reason_from_files_and_the_active_environment(tmp_path):
    project = write(tmp_path / "p", {"requirements.txt": "attrs\n"})
    assert explain_installer(project, environ={}) == ("pip", "requirements.txt is in the project")
    uv_venv = write(tmp_path / "venv", {"pyvenv.cfg": "home = /usr/bin\nuv = 0.5.4\n"})
    assert explain_installer(project, environ={"VIRTUAL_ENV": str(uv_venv)}) == (
        "uv",
        f"the active environment {uv_venv} was made by uv",
    )
    assert explain_installer(project, environ={"POETRY_ACTIVE": "1"})[0] == "poetry"
    bare = write(tmp_path / "bare", {"README.md": "scripts"})
    name, reason = explain_installer(bare, environ={})
    assert name is None and "provisioned" in reason


def test_from_project_finds_the_root_and_the_code_of_a_flat_layout(tmp_path):
    root = write(
        tmp_path / "shop",
        {
            "pyproject.toml": '[project]\nname = "shop"\nversion = "1"\ndependencies = ["attrs==24.2.0"]\n',
            "shop/__init__.py": "",
            "shop/pricing.py": "RATE = 2\n",
            "jobs.py": "",
            "setup.py": "",
            "conftest.py": "",
            "tests/__init__.py": "",
            "docs/conf.py": "",
        },
    )
    env = WorkerEnvironment.from_project(root / "shop", local_packages=False)
    assert env.project_dir == str(root)
    assert (env.installer, env.installer_reason) == ("pip", "pyproject.toml has a [project] table")
    assert env.requirements == ["attrs==24.2.0"]
    assert [Path(p).name for p in env.code_paths] == ["jobs.py", "shop"]
    assert env.ignore_file is None  # no .rayignore: the built-in excludes only


def test_from_project_ships_a_src_layout_and_nothing_to_install_is_manual(tmp_path):
    root = write(tmp_path / "lib", {"setup.cfg": "", "src/lib/__init__.py": "", "src/tool.py": ""})
    env = WorkerEnvironment.from_project(root, local_packages=False)
    assert env.installer == "manual" and env.requirements == []
    assert [Path(p).relative_to(root).as_posix() for p in env.code_paths] == ["src/lib", "src/tool.py"]


def test_a_plugin_choosing_the_installer_is_named_as_the_reason(tmp_path):
    root = write(tmp_path / "p", {"requirements.txt": "attrs\n"})
    module = plugin_module("chooser", zoopipe_select_installer=lambda project_dir: "manual")
    plugins.register_plugin(module, "chooser")
    env = WorkerEnvironment.from_project(root, local_packages=False)
    assert env.installer == "manual" and "zoopipe_select_installer chose 'manual'" in env.installer_reason


def test_the_editable_packages_of_this_environment_are_code_to_ship(tmp_path):
    """zoopipe-core itself is installed editable here (make dev): from a project elsewhere it is
    one of the local packages, with its plugins under their package-dir mapping."""
    import zoopipe_ray

    import zoopipe_core

    root = write(tmp_path / "p", {"requirements.txt": "attrs\n"})
    code = WorkerEnvironment.from_project(root).code_paths
    assert str(Path(zoopipe_core.__file__).parent) in code
    assert str(Path(zoopipe_ray.__file__).parent) in code
    assert WorkerEnvironment.from_project(root, local_packages=False).code_paths == []


def test_find_project_root_walks_up_and_stops(tmp_path):
    root = write(tmp_path / "p", {"uv.lock": "version = 1\n", "a/b/c.py": ""})
    assert find_project_root(root / "a" / "b" / "c.py") == root
    assert find_project_root(Path("/")) is None


@pytest.fixture
def heavy_project(tmp_path: Path) -> Path:
    return write(
        tmp_path / "heavy",
        {
            "requirements.txt": "attrs==24.2.0\n",
            ".rayignore": "# data stays home\nshop/data/*\n!shop/data/schema.json\n*.ckpt\n",
            "shop/__init__.py": "",
            "shop/model.ckpt": b"w" * 50_000,
            "shop/data/big.csv": b"x" * 80_000,
            "shop/data/schema.json": "{}",
            "shop/__pycache__/m.cpython-311.pyc": b"c" * 10,
            "shop/weights.bin": b"b" * 3_000,
            "jobs.py": "print(1)\n",
        },
    )


def test_zoopipe_env_json_reports_installer_requirements_and_what_ships(heavy_project, capsys):
    assert main(["env", str(heavy_project), "--json", "--no-local-packages"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["installer"] == "pip" and report["reason"] == "requirements.txt is in the project"
    assert report["requirements"] == ["attrs==24.2.0"]
    ship = report["ship"]
    # big.csv (the .rayignore's shop/data/*), model.ckpt (*.ckpt) and __pycache__ (built in) stay home.
    assert ship["files"] == 4
    assert ship["bytes"] == 3_000 + len("{}") + len("print(1)\n")
    assert ship["largest"][0] == {"path": "shop/weights.bin", "bytes": 3_000}
    assert {entry["path"] for entry in ship["largest"]} == {
        "shop/weights.bin",
        "jobs.py",
        "shop/data/schema.json",
        "shop/__init__.py",
    }


def test_zoopipe_env_text_lists_the_largest_files(heavy_project, capsys):
    assert main(["env", str(heavy_project), "--no-local-packages"]) == 0
    out = capsys.readouterr().out
    assert "installer:    pip (requirements.txt is in the project)" in out
    assert "ships:        4 files" in out and "shop/weights.bin" in out


def test_zoopipe_env_explain_names_the_rule_file_and_line(heavy_project, capsys):
    ignore = heavy_project / ".rayignore"
    cases = {
        "shop/data/big.csv": f"does not ship: the pattern 'shop/data/*' ({ignore}:2) leaves it out",
        "shop/data/schema.json": f"ships: the pattern '!shop/data/schema.json' ({ignore}:3) brings it back",
        "shop/model.ckpt": f"does not ship: the pattern '*.ckpt' ({ignore}:4)",
        "shop/__pycache__/m.cpython-311.pyc": "the pattern '__pycache__/' (zoopipe's built-in excludes)",
        "shop/weights.bin": "ships with the code path",
        "requirements.txt": "it is in none of the code paths",
    }
    for name, expected in cases.items():
        assert (
            main(["env", str(heavy_project), "--no-local-packages", "--explain", str(heavy_project / name)])
            == 0
        )
        assert expected in capsys.readouterr().out, name
    main(
        [
            "env",
            str(heavy_project),
            "--no-local-packages",
            "--json",
            "--explain",
            str(heavy_project / "jobs.py"),
        ]
    )
    assert json.loads(capsys.readouterr().out)["ships"] is True


def test_a_project_package_this_interpreter_imports_from_elsewhere_is_not_shipped(tmp_path, monkeypatch):
    # The driver runs an installed copy (a benchmark venv beside the source tree): shipping the
    # tree's copy would give the workers other code, and another native build, than the driver.
    installed, root = tmp_path / "site-packages", tmp_path / "project"
    for base in (installed, root):
        (base / "twinpkg").mkdir(parents=True)
        (base / "twinpkg" / "__init__.py").write_text("")
    (root / "pyproject.toml").write_text("[project]\nname = 'twin'\n")
    (root / "jobs.py").write_text("")
    monkeypatch.syspath_prepend(str(installed))
    project = resolve_project(root, local_packages=False)
    assert project.code_paths == [str(root / "jobs.py")]
    monkeypatch.syspath_prepend(str(root))  # run from the project: its own copy is the one
    project = resolve_project(root, local_packages=False)
    assert project.code_paths == [str(root / "jobs.py"), str(root / "twinpkg")]
