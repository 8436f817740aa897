"""Outputs that resolve to one file are refused before anything runs (issue 14, item 1):
an output and an error output on the same path lost the valid records."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import BaseModel

from zoopipe_core import (
    CountOutputAdapter,
    CSVInputAdapter,
    CSVOutputAdapter,
    JSONInputAdapter,
    JSONOutputAdapter,
    MemoryOutputAdapter,
    Pipe,
    PipelineError,
    PipeManager,
    PyGeneratorInputAdapter,
)
from zoopipe_core.engines import MultiProcessEngine


class M(BaseModel):
    id: int
    name: str


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.csv").write_text("id,name\n1,a\nx,b\n3,c\n")
    return tmp_path


def _refused(main: str, errors: str) -> str:
    with pytest.raises(PipelineError) as raised:
        Pipe(
            CSVInputAdapter("in.csv"),
            JSONOutputAdapter(main),
            error_output_adapter=JSONOutputAdapter(errors),
            schema_model=M,
        )
    return str(raised.value)


def test_output_and_error_output_on_one_path_are_refused_naming_both(folder: Path) -> None:
    message = _refused("o.jsonl", "o.jsonl")
    assert "output_adapter JSONOutputAdapter('o.jsonl')" in message
    assert "error_output_adapter JSONOutputAdapter('o.jsonl')" in message
    assert str(folder / "o.jsonl") in message
    assert not (folder / "o.jsonl").exists() and not [p for p in os.listdir(folder) if p.endswith(".tmp")]


def test_spellings_of_one_file_are_resolved(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    absolute = str(folder / "o.jsonl")
    _refused("o.jsonl", absolute)  # relative vs absolute
    _refused("./sub/../o.jsonl", "o.jsonl")
    _refused(f"file://{absolute}", "o.jsonl")  # file:// URL vs local path
    monkeypatch.setenv("HOME", str(folder))
    _refused("~/o.jsonl", "o.jsonl")  # ~
    (folder / "real").mkdir()
    (folder / "link").symlink_to(folder / "real", target_is_directory=True)
    _refused("link/o.jsonl", "real/o.jsonl")  # a symlinked directory
    _refused("memory://bucket/o.jsonl", "memory://bucket//o.jsonl")  # fsspec URLs, normalised


def test_distinct_paths_and_outputs_without_a_file_are_accepted(folder: Path) -> None:
    report = Pipe(
        CSVInputAdapter("in.csv"),
        JSONOutputAdapter("o.jsonl"),
        error_output_adapter=JSONOutputAdapter("o.errors.jsonl"),
        schema_model=M,
    ).run()
    assert (report.success_count, report.error_count) == (2, 1)
    assert len((folder / "o.jsonl").read_text().splitlines()) == 2
    Pipe(CSVInputAdapter("in.csv"), CountOutputAdapter(), error_output_adapter=CountOutputAdapter()).run()


def test_one_python_output_object_given_twice_is_refused(folder: Path) -> None:
    out = MemoryOutputAdapter()
    with pytest.raises(PipelineError, match="the same adapter object"):
        Pipe(PyGeneratorInputAdapter([{"a": 1}]), out, error_output_adapter=out)


def test_an_output_on_its_own_input_is_refused(folder: Path) -> None:
    with pytest.raises(PipelineError, match="would replace the input it is read from"):
        Pipe(CSVInputAdapter("in.csv"), CSVOutputAdapter(str(folder / "in.csv")))
    with pytest.raises(PipelineError, match=r"error_output_adapter .* which input_adapter"):
        Pipe(
            CSVInputAdapter("in.csv"),
            JSONOutputAdapter("o.jsonl"),
            error_output_adapter=CSVOutputAdapter("in.csv"),
        )


def test_pipes_of_one_manager_writing_one_file_are_refused(folder: Path) -> None:
    (folder / "a.jsonl").write_text('{"n": 1}\n')
    (folder / "b.jsonl").write_text('{"n": 2}\n')
    pipes = [
        Pipe(JSONInputAdapter("a.jsonl"), JSONOutputAdapter("out.jsonl")),
        Pipe(JSONInputAdapter("b.jsonl"), JSONOutputAdapter(str(folder / "out.jsonl"))),
    ]
    with pytest.raises(PipelineError) as raised:
        PipeManager(pipes, engine=MultiProcessEngine(max_workers=1))
    assert "pipes[0].output_adapter" in str(raised.value) and "pipes[1].output_adapter" in str(raised.value)
    chained = [
        Pipe(JSONInputAdapter("a.jsonl"), JSONOutputAdapter("b.jsonl")),
        Pipe(JSONInputAdapter("b.jsonl"), JSONOutputAdapter("c.jsonl")),
    ]
    with pytest.raises(PipelineError, match=r"pipes\[1\]\.input_adapter"):
        PipeManager(chained, engine=MultiProcessEngine(max_workers=1))


def test_shards_of_one_output_are_not_duplicates(folder: Path) -> None:
    files = []
    for n in range(2):
        files.append(str(folder / f"p{n}.jsonl"))
        Path(files[-1]).write_text(f'{{"id": {n}, "name": "x"}}\n{{"id": "bad", "name": "y"}}\n')
    pipe = Pipe(
        JSONInputAdapter(files),
        JSONOutputAdapter("all.jsonl"),
        error_output_adapter=JSONOutputAdapter("errors.jsonl"),
        schema_model=M,
    )
    manager = PipeManager.parallelize_pipe(
        pipe, workers=2, should_merge=True, engine=MultiProcessEngine(max_workers=2)
    )
    assert manager.run(show_progress=False).error_count == 2
    assert len((folder / "all.jsonl").read_text().splitlines()) == 2


def test_a_toml_pipeline_with_one_path_twice_fails_in_one_line(folder: Path) -> None:
    (folder / "models.py").write_text(
        "from pydantic import BaseModel\nclass M(BaseModel):\n    id: int\n    name: str\n"
    )
    (folder / "pipe.toml").write_text(
        textwrap.dedent(
            """
        [input]
        path = "in.csv"
        [output]
        path = "o.jsonl"
        [errors]
        path = "./o.jsonl"
        [schema]
        model = "models:M"
        """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "zoopipe_core.cli", "run", "pipe.toml"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert (
        len(lines) == 1 and "both write to the same file" in lines[0] and str(folder / "o.jsonl") in lines[0]
    )
    assert not (folder / "o.jsonl").exists()


def test_tilde_paths_are_read_and_written_in_the_home_directory(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Compared with ~ expanded, so ~ must mean the home directory when reading and writing too.
    monkeypatch.setenv("HOME", str(folder))
    report = Pipe(CSVInputAdapter("~/in.csv"), JSONOutputAdapter("~/o.jsonl"), schema_model=M).run()
    assert report.success_count == 2
    assert len((folder / "o.jsonl").read_text().splitlines()) == 2 and not (folder / "~").exists()
