"""Messages and the CLI (issue 14, item 11): a typo in [executor] is one clean line, a transform
returning a dict says so, and `zoopipe run` runs a PipeManager like a Pipe."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from zoopipe_core import MemoryOutputAdapter, Pipe, PyGeneratorInputAdapter


def _zoopipe(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "zoopipe_core.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "users.csv").write_text("id,name\n1,ada\n2,bob\n")
    return tmp_path


@pytest.mark.parametrize(
    "executor, expected",
    [
        ('kind = "multi-thread"\nmax_worker = 2', "unknown option(s) ['max_worker'] for kind 'multi-thread'"),
        (
            "batchsize = 10",
            "unknown option(s) ['batchsize'] for kind 'single-thread'; it takes kind, batch_size",
        ),
        ("batch_size = 0", "batch_size must be at least 1"),
    ],
)
def test_a_bad_executor_section_is_one_clean_line(project: Path, executor: str, expected: str) -> None:
    (project / "pipe.toml").write_text(
        f'[input]\npath = "users.csv"\n[output]\npath = "o.jsonl"\n[executor]\n{executor}\n'
    )
    result = _zoopipe("run", "pipe.toml", cwd=project)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "pipe.toml [executor]: " in lines[0] and expected in lines[0]


def test_a_transform_returning_a_dict_says_it_returned_a_dict() -> None:
    def first_only(records):
        return records[0]

    errors = MemoryOutputAdapter()
    report = Pipe(
        PyGeneratorInputAdapter([{"a": i} for i in range(5)]),
        MemoryOutputAdapter(),
        error_output_adapter=errors,
        post_validation=[first_only],
    ).run()
    assert report.error_count == 5
    message = errors.records[0]["errors"][0]
    assert "returned a dict (a single record) for a batch of 5 records" in message
    assert "returned 1 records" not in message and "list" in message


MANAGERS = textwrap.dedent(
    """
    from zoopipe_core import CSVInputAdapter, JSONOutputAdapter, Pipe, PipeManager
    from zoopipe_core.engines import MultiProcessEngine

    def _pipes(*names):
        return [Pipe(CSVInputAdapter(name), JSONOutputAdapter(f"{name}.jsonl")) for name in names]

    manager = PipeManager(_pipes("users.csv", "more.csv"), engine=MultiProcessEngine(max_workers=2))
    broken = PipeManager(_pipes("users.csv", "missing.csv"), engine=MultiProcessEngine(max_workers=2))

    def make():
        return PipeManager(_pipes("users.csv"), engine=MultiProcessEngine(max_workers=1))
    """
)


def test_zoopipe_run_runs_a_pipe_manager(project: Path) -> None:
    (project / "more.csv").write_text("id,name\n3,cy\n")
    (project / "managers.py").write_text(MANAGERS)
    result = _zoopipe("run", "managers:manager", "--json", cwd=project)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert (report["status"], report["pipe_count"], report["success_count"]) == ("completed", 2, 3)
    assert report["start_time"] and report["end_time"]
    assert "done: rows 3" in result.stderr  # the same progress lines as a Pipe
    assert len((project / "more.csv.jsonl").read_text().splitlines()) == 1


def test_zoopipe_run_of_a_manager_factory_and_a_failed_manager(project: Path) -> None:
    (project / "managers.py").write_text(MANAGERS)
    assert _zoopipe("run", "managers:make", "--quiet", cwd=project).returncode == 0
    result = _zoopipe("run", "managers:broken", cwd=project)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "1 of 2 pipes failed" in result.stderr
    assert (
        "pipe 1 (missing.csv -> missing.csv.jsonl) failed" in result.stderr and "not found" in result.stderr
    )
