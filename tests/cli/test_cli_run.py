"""`zoopipe run`: a module attribute or a pipeline file, progress output, exit status."""

import json
import pathlib
import subprocess
import sys
import textwrap

import pytest

from zoopipe_core.cli import main

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs"

MODELS = textwrap.dedent(
    """
    from pydantic import BaseModel

    class User(BaseModel):
        id: int
        name: str

    def upper(records):
        for r in records:
            r["name"] = r["name"].upper()
    """
)


@pytest.fixture
def project(tmp_path):
    (tmp_path / "models.py").write_text(MODELS)
    (tmp_path / "users.csv").write_text("id,name\n1,ada\nx,bob\n3,cy\n")
    return tmp_path


def _zoopipe(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "zoopipe_core.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_toml_pipeline_file(project):
    (project / "pipe.toml").write_text(
        textwrap.dedent(
            """
        [input]
        path = "users.csv"
        [output]
        path = "out.jsonl"
        [errors]
        path = "errors.jsonl"
        [schema]
        model = "models:User"
        [transforms]
        post_validation = ["models:upper"]
        [executor]
        kind = "multi-thread"
        batch_size = 2
        max_workers = 2
        """
        )
    )
    result = _zoopipe("run", str(project / "pipe.toml"), "--json", cwd=project.parent)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert (report["total_processed"], report["success_count"], report["error_count"]) == (3, 2, 1)
    assert [json.loads(line)["name"] for line in (project / "out.jsonl").read_text().splitlines()] == [
        "ADA",
        "CY",
    ]
    assert json.loads((project / "errors.jsonl").read_text())["line"] == 3
    # Not a terminal: plain progress lines on stderr, ending with the summary.
    assert "done: rows 3" in result.stderr


def test_yaml_pipeline_file(project):
    (project / "pipe.yaml").write_text(
        "input: {path: users.csv}\noutput: {path: out.csv}\nschema: {model: 'models:User'}\n"
    )
    assert main(["run", str(project / "pipe.yaml"), "--quiet"]) == 0
    assert (project / "out.csv").read_text() == "id,name\n1,ada\n3,cy\n"


def test_module_attribute_target(project):
    (project / "mypipes.py").write_text(
        textwrap.dedent(
            """
        from zoopipe_core import Pipe, CSVInputAdapter, JSONOutputAdapter
        from models import User

        def users():
            return Pipe(CSVInputAdapter("users.csv"), JSONOutputAdapter("out.jsonl"), schema_model=User)
        """
        )
    )
    result = _zoopipe("run", "mypipes:users", cwd=project)
    assert result.returncode == 0, result.stderr
    assert len((project / "out.jsonl").read_text().splitlines()) == 2


def test_failed_run_exits_non_zero_and_names_the_file(project):
    (project / "pipe.toml").write_text('[input]\npath = "missing.csv"\n[output]\npath = "out.jsonl"\n')
    result = _zoopipe("run", str(project / "pipe.toml"), cwd=project)
    assert result.returncode == 1
    assert "missing.csv" in result.stderr and "not found" in result.stderr
    assert not (project / "out.jsonl").exists()


def test_bad_targets_are_explained(project, capsys):
    assert main(["run", "nosuchmodule_xyz:pipe"]) == 1
    assert "cannot import module 'nosuchmodule_xyz'" in capsys.readouterr().err
    (project / "bad.toml").write_text("[input]\npath = 'users.csv'\n[outptu]\npath = 'x.jsonl'\n")
    assert main(["run", str(project / "bad.toml")]) == 1
    assert "unknown sections ['outptu']" in capsys.readouterr().err


def test_quiet_prints_only_errors_as_help_and_docs_say(project):
    """`--quiet` means one thing in the help, docs/cli.md and the code: no progress, no summary."""
    (project / "pipe.toml").write_text('[input]\npath = "users.csv"\n[output]\npath = "out.jsonl"\n')
    ok = _zoopipe("run", "--quiet", "pipe.toml", cwd=project)
    assert ok.returncode == 0, ok.stderr
    assert (ok.stdout, ok.stderr) == ("", "")
    (project / "bad.toml").write_text('[input]\npath = "missing.csv"\n[output]\npath = "out2.jsonl"\n')
    failed = _zoopipe("run", "--quiet", "bad.toml", cwd=project)
    assert failed.returncode == 1 and "missing.csv" in failed.stderr
    help_text = " ".join(_zoopipe("run", "--help", cwd=project).stdout.split())
    assert "--quiet no progress and no summary line; only errors" in help_text
    assert "`--quiet` (no progress and no summary line; only errors)" in (DOCS / "cli.md").read_text()
