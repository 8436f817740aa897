"""examples/plugin-template, installed for real: found through its entry point and run in pipes.

The checks run in fresh interpreters, so the freshly installed distribution is seen exactly as a
user's process would see it. The template is installed into a throw-away directory put on those
interpreters' PYTHONPATH, never into the test environment: installed there, it would claim the
`.txt` suffix in every later run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "examples" / "plugin-template"


@pytest.fixture(scope="module")
def installed_template(tmp_path_factory):
    """The environment of an interpreter that has the template installed (and this one has not)."""
    # Build from a copy: pip builds in place and would leave build/ and *.egg-info in the repo.
    source = tmp_path_factory.mktemp("template") / "plugin-template"
    shutil.copytree(TEMPLATE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    site = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(source),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
    }


def run_python(script: str, cwd: Path, env: dict[str, str]) -> dict:
    """Run ``script`` in a fresh interpreter; it prints one JSON document as its last line."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_lines_file_through_a_pipe(installed_template, tmp_path):
    (tmp_path / "notes.txt").write_text("alpha\nbeta\n\ngamma\n")
    outcome = run_python(
        """
        import json
        from pydantic import BaseModel
        from zoopipe_core import MemoryOutputAdapter, Pipe
        from zoopipe_lines import LinesInputAdapter

        class Line(BaseModel):
            line_number: int
            text: str

        out = MemoryOutputAdapter()
        report = Pipe(LinesInputAdapter("notes.txt"), out, schema_model=Line).run()
        print(json.dumps({
            "records": out.records,
            "counts": [report.success_count, report.error_count, report.total_processed],
        }))
        """,
        tmp_path,
        installed_template,
    )
    assert outcome["records"] == [
        {"line_number": 1, "text": "alpha"},
        {"line_number": 2, "text": "beta"},
        {"line_number": 3, "text": ""},
        {"line_number": 4, "text": "gamma"},
    ]
    assert outcome["counts"] == [4, 0, 4]


def test_lines_from_a_url_into_jsonl(installed_template, tmp_path):
    outcome = run_python(
        """
        import json
        import fsspec
        from zoopipe_core import JSONOutputAdapter, Pipe
        from zoopipe_lines import LinesInputAdapter

        with fsspec.open("memory://template-test/in.txt", "w") as file:
            file.write("one\\ntwo\\n")
        report = Pipe(
            LinesInputAdapter("memory://template-test/in.txt"),
            JSONOutputAdapter("out.jsonl"),
            post_validation=[lambda records: [{**r, "text": r["text"].upper()} for r in records]],
        ).run()
        with open("out.jsonl") as file:
            rows = [json.loads(line) for line in file]
        print(json.dumps({"rows": rows, "success": report.success_count}))
        """,
        tmp_path,
        installed_template,
    )
    assert outcome["rows"] == [
        {"line_number": 1, "text": "ONE"},
        {"line_number": 2, "text": "TWO"},
    ]
    assert outcome["success"] == 2


def test_lines_output_commits_atomically(installed_template, tmp_path):
    outcome = run_python(
        """
        import json, os
        from zoopipe_core import Pipe, PyGeneratorInputAdapter
        from zoopipe_lines import LinesOutputAdapter

        report = Pipe(
            PyGeneratorInputAdapter([{"text": "first"}, {"text": "second"}]),
            LinesOutputAdapter("good.txt"),
        ).run()
        failure = None
        try:
            Pipe(
                PyGeneratorInputAdapter([{"text": "kept?"}, {"other": "no text field"}]),
                LinesOutputAdapter("bad.txt"),
            ).run()
        except Exception as exc:
            failure = type(exc).__name__
        print(json.dumps({
            "good": open("good.txt").read(),
            "success": report.success_count,
            "failure": failure,
            "files": sorted(os.listdir(".")),
        }))
        """,
        tmp_path,
        installed_template,
    )
    assert outcome["good"] == "first\nsecond\n"
    assert outcome["success"] == 2
    assert outcome["failure"] is not None
    assert outcome["files"] == ["good.txt"]  # no bad.txt, no temporary file left behind


def test_lines_is_registered_by_name_and_suffix(installed_template, tmp_path):
    outcome = run_python(
        """
        import json
        from zoopipe_core import Pipe, MemoryOutputAdapter, plugins
        from zoopipe_core.adapters.resolve import resolve_input_adapter, resolve_output_adapter
        from zoopipe_lines import LinesInputAdapter, LinesOutputAdapter

        info = next(p for p in plugins.list_plugins() if p.name == "lines")
        by_path = resolve_input_adapter("notes.txt")
        open("notes.txt", "w").write("x\\n")
        out = MemoryOutputAdapter()
        Pipe("notes.txt", out).run()
        print(json.dumps({
            "input_class": plugins.get_adapter_class("lines", "input") is LinesInputAdapter,
            "output_class": plugins.get_adapter_class("lines", "output") is LinesOutputAdapter,
            "by_suffix": plugins.adapter_name_for_path("s3://bucket/notes.txt", "input"),
            "by_path": [type(by_path).__name__, by_path.path],
            "by_name": type(resolve_output_adapter("lines", path="o.txt")).__name__,
            "package": [info.distribution, info.version, info.module],
            "components": [[c.kind, c.name, list(c.suffixes)] for c in info.components],
            "pipe_by_path": out.records,
        }))
        """,
        tmp_path,
        installed_template,
    )
    assert outcome["input_class"] and outcome["output_class"]
    assert outcome["by_suffix"] == "lines"
    assert outcome["by_path"] == ["LinesInputAdapter", "notes.txt"]
    assert outcome["by_name"] == "LinesOutputAdapter"
    assert outcome["package"] == ["zoopipe-lines", "0.1.0", "zoopipe_lines.plugin"]
    assert outcome["components"] == [["adapter", "lines", [".txt"]]]
    assert outcome["pipe_by_path"] == [{"line_number": 1, "text": "x"}]


def test_zoopipe_plugins_lists_the_template(installed_template, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "zoopipe_core.cli", "plugins"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=installed_template,
    )
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith("lines "))
    assert "zoopipe-lines" in row and "0.1.0" in row and "adapter lines [in/out] .txt" in row


def test_the_test_environment_is_left_without_the_template(installed_template):
    from importlib import metadata

    with pytest.raises(metadata.PackageNotFoundError):
        metadata.distribution("zoopipe-lines")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "show", "zoopipe-lines"], capture_output=True, text=True
    )
    assert result.returncode != 0, "the plugin template was installed into the test environment"
