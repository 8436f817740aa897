"""Ignore files follow git's rules (pathspec), in the one module every engine that ships code uses."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from zoopipe_core.engines import WorkerEnvironment
from zoopipe_core.installers import ALWAYS_EXCLUDED, IgnoreRules, read_ignore_file


def shipped(root: Path, patterns: list[str]) -> list[str]:
    return [p.relative_to(root).as_posix() for p in IgnoreRules(patterns).files(root)]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    for name in (
        "main.py",
        "debug.log",
        "keep.log",
        "notes.txt",
        "docs/notes.txt",
        "build/out.bin",
        "src/build",  # a file named like the directory-only pattern
        "src/pkg/__pycache__/m.pyc",
        "src/pkg/m.py",
        "data/big.csv",
        "data/schema.csv",
        "data/raw/deep.csv",
    ):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("")
    return root


def test_negation_brings_a_file_back(project):
    kept = shipped(project, ["*.log", "!keep.log"])
    assert "keep.log" in kept and "debug.log" not in kept


def test_negation_cannot_bring_back_a_file_of_an_ignored_directory(project):
    kept = shipped(project, ["build/", "!build/out.bin"])
    assert not any(p.startswith("build/") for p in kept)


def test_directory_only_patterns_leave_files_of_that_name(project):
    kept = shipped(project, ["build/"])
    assert "src/build" in kept and "build/out.bin" not in kept
    assert shipped(project, ["build"]).count("src/build") == 0  # without the slash, both go


def test_anchored_patterns_match_from_the_root_only(project):
    kept = shipped(project, ["/notes.txt"])
    assert "notes.txt" not in kept and "docs/notes.txt" in kept
    # A slash in the middle anchors too, and `*` does not cross a slash (fnmatch's did).
    kept = shipped(project, ["data/*.csv"])
    assert "data/big.csv" not in kept and "data/raw/deep.csv" in kept


def test_double_star(project):
    assert "src/pkg/__pycache__/m.pyc" not in shipped(project, ["**/__pycache__/"])
    kept = shipped(project, ["data/**/*.csv", "!data/schema.csv"])
    assert [p for p in kept if p.startswith("data/")] == ["data/schema.csv"]


def test_files_order_is_stable_and_complete_without_patterns(project):
    assert shipped(project, [])[:4] == ["debug.log", "keep.log", "main.py", "notes.txt"]
    assert len(shipped(project, [])) == 12


def test_read_ignore_file_and_worker_environment_agree(tmp_path):
    ignore = tmp_path / ".rayignore"
    ignore.write_text("# comment\n\n  *.log  \n!keep.log\n")
    assert read_ignore_file(ignore) == ["*.log", "!keep.log"]
    # The built-in excludes come first; the file's patterns follow (a later one wins, as in git).
    assert WorkerEnvironment(ignore_file=str(ignore)).ignore_patterns() == [
        *ALWAYS_EXCLUDED,
        "*.log",
        "!keep.log",
    ]
    assert read_ignore_file(tmp_path / "missing") == []
    assert WorkerEnvironment(ignore_file=None).ignore_patterns() == list(ALWAYS_EXCLUDED)


def test_dask_code_archives_use_gits_rules(project, monkeypatch):
    from zoopipe_dask.engine import code_archives

    (project.parent / ".rayignore").write_text("*.log\n!keep.log\n/notes.txt\nbuild/\n**/__pycache__/\n")
    monkeypatch.chdir(project.parent)
    [(_, data)] = code_archives(WorkerEnvironment(code_paths=["project"])).items()
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert "keep.log" in names and "docs/notes.txt" in names and "src/build" in names
    assert not {"debug.log", "notes.txt", "build/out.bin", "src/pkg/__pycache__/m.pyc"} & set(names)
