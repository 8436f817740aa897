"""ZooPipe's spellings on reports and engines: start_time/end_time on pipe and manager reports,
manager failures that name the pipe and the reason, and `engine.start(pipes)` refused with the
way to write it."""

from __future__ import annotations

import datetime
import time
from pathlib import Path

import pytest

from zoopipe_core import (
    JSONInputAdapter,
    JSONOutputAdapter,
    MemoryOutputAdapter,
    Pipe,
    PipelineError,
    PipeManager,
    PyGeneratorInputAdapter,
)
from zoopipe_core.engines import MultiProcessEngine


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def test_a_pipe_report_has_start_and_end_times_as_utc_datetimes() -> None:
    pipe = Pipe(PyGeneratorInputAdapter([{"a": 1}]), MemoryOutputAdapter())
    assert pipe.report.start_time is None and pipe.report.end_time is None
    before = _utc_now()
    report = pipe.run()
    after = _utc_now()
    assert isinstance(report.start_time, datetime.datetime) and report.start_time.tzinfo is not None
    assert before <= report.start_time <= report.end_time <= after
    assert (report.end_time - report.start_time).total_seconds() == pytest.approx(report.duration, abs=0.05)
    assert report.to_dict()["start_time"] == report.start_time.isoformat()


def test_a_running_pipe_has_a_start_time_and_no_end_time(tmp_path: Path) -> None:
    import threading

    release = threading.Event()

    def hold(records):
        release.wait(10)
        return records

    pipe = Pipe(PyGeneratorInputAdapter([{"a": 1}]), MemoryOutputAdapter(), post_validation=[hold])
    pipe.start()
    try:
        deadline = time.monotonic() + 10
        while pipe.report.start_time is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pipe.report.start_time is not None
        assert pipe.report.end_time is None
    finally:
        release.set()
        pipe.wait()
    assert pipe.report.end_time >= pipe.report.start_time


def _jsonl(path: Path, rows: int) -> str:
    path.write_text("".join(f'{{"n": {i}}}\n' for i in range(rows)))
    return str(path)


def test_manager_report_has_start_and_end_times_and_per_pipe_times(tmp_path: Path) -> None:
    pipes = [
        Pipe(
            JSONInputAdapter(_jsonl(tmp_path / f"in{i}.jsonl", 10)),
            JSONOutputAdapter(str(tmp_path / f"o{i}.jsonl")),
        )
        for i in range(2)
    ]
    manager = PipeManager(pipes, engine=MultiProcessEngine(max_workers=2))
    assert manager.report.start_time is None
    before = _utc_now()
    report = manager.run(show_progress=False)
    after = _utc_now()
    assert before <= report.start_time <= report.end_time <= after
    for pipe_report in manager.pipe_reports:
        assert report.start_time <= pipe_report.start_time <= pipe_report.end_time <= report.end_time


def test_manager_report_failures_name_the_pipe_and_the_reason(tmp_path: Path) -> None:
    good = _jsonl(tmp_path / "good.jsonl", 5)
    missing = str(tmp_path / "missing.jsonl")
    pipes = [
        Pipe(JSONInputAdapter(good), JSONOutputAdapter(str(tmp_path / "a.jsonl"))),
        Pipe(JSONInputAdapter(missing), JSONOutputAdapter(str(tmp_path / "b.jsonl"))),
    ]
    manager = PipeManager(pipes, engine=MultiProcessEngine(max_workers=2))
    with pytest.raises(PipelineError) as raised:
        manager.run(show_progress=False)
    report = manager.report
    reason = report.failure_reasons[1]
    assert reason.startswith(f"pipe 1 ({missing} -> {tmp_path / 'b.jsonl'}): ")
    assert "input file not found" in reason
    assert reason in repr(report)
    assert f"pipe 1 ({missing} -> " in str(raised.value) and "input file not found" in str(raised.value)
    assert list(report.failure_reasons) == [1]


def test_engine_start_with_pipes_says_to_use_a_pipe_manager(tmp_path: Path) -> None:
    engine = MultiProcessEngine(max_workers=1)
    pipe = Pipe(PyGeneratorInputAdapter([{"a": 1}]), MemoryOutputAdapter())
    with pytest.raises(TypeError, match=r"PipeManager\(pipes, engine=MultiProcessEngine\(\.\.\.\)\)"):
        engine.start([pipe])
    assert not engine.is_running
