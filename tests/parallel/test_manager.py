"""PipeManager on the default engine: the seed's examples as written, and the manager contract."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pydantic import BaseModel

from zoopipe_core import CSVInputAdapter, JSONOutputAdapter, Pipe, PipeManager
from zoopipe_core.engines import MultiProcessEngine
from zoopipe_core.testing import PipeManagerContract


class TestPipeManagerOnProcesses(PipeManagerContract):
    reports_lost_worker_pid = True

    def make_engine(self):
        return MultiProcessEngine(max_workers=2)


class UserSchema(BaseModel):
    user_id: str
    username: str
    email: str


@pytest.fixture
def parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """data_part_{1,2,3}.csv in the current directory, as the documentation's example reads."""
    monkeypatch.chdir(tmp_path)
    for n in (1, 2, 3):
        rows = "".join(f"{n}{i},user{i},u{i}@x.io\n" for i in range(100))
        (tmp_path / f"data_part_{n}.csv").write_text("user_id,username,email\n" + rows)
    return tmp_path


def documented_pipes() -> list[Pipe]:
    return [
        Pipe(
            input_adapter=CSVInputAdapter(f"data_part_{n}.csv"),
            output_adapter=JSONOutputAdapter(f"output_{n}.jsonl"),
            schema_model=UserSchema,
        )
        for n in (1, 2, 3)
    ]


def test_basic_usage_as_documented(parts: Path) -> None:
    manager = PipeManager(pipes=documented_pipes())
    manager.start()
    manager.wait()
    print(f"Total processed: {manager.report.total_processed}")
    assert manager.report.total_processed == 300
    assert all((parts / f"output_{n}.jsonl").read_text().count("\n") == 100 for n in (1, 2, 3))


def test_monitoring_loop_as_documented(parts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manager = PipeManager(pipes=documented_pipes(), engine=MultiProcessEngine(max_workers=2))
    manager.start()
    while not manager.report.is_finished:
        print(
            f"Total: {manager.report.total_processed} | "
            f"Speed: {manager.report.items_per_second:.2f} rows/s | "
            f"RAM: {manager.report.ram_bytes / 1024 / 1024:.2f} MB"
        )
        for i, pipe_report in enumerate(manager.pipe_reports):
            print(f"  Pipe {i}: {pipe_report.total_processed} processed, finished: {pipe_report.is_finished}")
        time.sleep(0.05)
    print(manager.report)
    assert "status=completed" in capsys.readouterr().out
    assert manager.report.success_count == 300 and manager.report.ram_bytes > 0


def test_context_manager_as_documented(parts: Path) -> None:
    pipe1, pipe2, pipe3 = documented_pipes()
    with PipeManager(pipes=[pipe1, pipe2, pipe3], engine="multiprocess") as manager:
        while not manager.report.is_finished:
            print(f"Progress: {manager.report.total_processed}")
            time.sleep(0.05)
    assert manager.report.total_processed == 300 and not manager.is_running
    assert pipe2.report.success_count == 100  # a pipe's own report is the manager's live one


def test_properties_and_errors(parts: Path) -> None:
    manager = PipeManager(documented_pipes(), engine=MultiProcessEngine(max_workers=2))
    assert manager.pipe_count == 3 and len(manager.pipes) == 3 and not manager.is_running
    assert manager.report.status.value == "pending"
    with pytest.raises(RuntimeError, match="not started"):
        manager.wait()
    with pytest.raises(IndexError):
        manager.get_pipe_report(3)
    with pytest.raises(ValueError, match="at least one pipe"):
        PipeManager([])
    with pytest.raises(ValueError, match="retries"):
        PipeManager(documented_pipes(), retries=-1)
    report = manager.run(show_progress=False)
    assert report.success_count == 300


def test_run_shows_progress(parts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    PipeManager(documented_pipes(), engine=MultiProcessEngine(max_workers=2)).run()
    assert "done: rows 300" in capsys.readouterr().err


def test_memory_outputs_are_refused(parts: Path) -> None:
    from zoopipe_core import MemoryOutputAdapter

    with pytest.raises(ValueError, match="MemoryOutputAdapter"):
        PipeManager([Pipe(CSVInputAdapter("data_part_1.csv"), MemoryOutputAdapter())])


def test_a_running_engine_is_shared_and_left_running(tmp_path: Path) -> None:
    from zoopipe_core import JSONInputAdapter
    from zoopipe_core.testing import NeverEnds, wait_for, write_users

    source = write_users(tmp_path / "users.jsonl", 0, 20)
    with MultiProcessEngine(max_workers=2) as engine:
        first = PipeManager(
            [Pipe(JSONInputAdapter(source), JSONOutputAdapter(tmp_path / "a.jsonl"))], engine=engine
        )
        assert first.run(show_progress=False).success_count == 20
        assert engine.is_running, "an engine the manager did not start stays up"
        started = str(tmp_path / "started")
        stuck = PipeManager(
            [
                Pipe(
                    JSONInputAdapter(source),
                    JSONOutputAdapter(tmp_path / "b.jsonl"),
                    post_validation=[NeverEnds(started)],
                )
            ],
            engine=engine,
        )
        stuck.start()
        wait_for(lambda: Path(started).exists(), "the pipe to start")
        stuck.shutdown(timeout=1.0)
        assert stuck.report.status.value == "cancelled" and engine.is_running
        assert not (tmp_path / "b.jsonl").exists()
        # shutdown() returns once the cancelled task removed its temporary file.
        assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
        assert engine.submit(sum, [1, 2]).result(timeout=30) == 3


def test_an_engine_passed_stopped_is_started_once_and_left_to_its_owner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: each manager started the engine and shut it down after its run, so every
    # manager restarted it. Now the engine is the caller's: started once, never shut down.
    from zoopipe_core import JSONInputAdapter
    from zoopipe_core.testing import write_users

    starts: list[MultiProcessEngine] = []
    real_start = MultiProcessEngine._start
    monkeypatch.setattr(MultiProcessEngine, "_start", lambda self: (starts.append(self), real_start(self)))
    source = write_users(tmp_path / "users.jsonl", 0, 20)
    engine = MultiProcessEngine(max_workers=2)
    try:
        for n in range(3):
            manager = PipeManager(
                [Pipe(JSONInputAdapter(source), JSONOutputAdapter(tmp_path / f"out{n}.jsonl"))], engine=engine
            )
            assert manager.run(show_progress=False).success_count == 20
            assert engine.is_running
        assert starts == [engine]
    finally:
        engine.shutdown()
    # A manager given a name (or nothing) made its engine: it shuts it down after each run.
    manager = PipeManager(
        [Pipe(JSONInputAdapter(source), JSONOutputAdapter(tmp_path / "x.jsonl"))], engine="multiprocess"
    )
    manager.run(show_progress=False)
    assert not manager.engine.is_running


def test_an_engine_nobody_shut_down_is_shut_down_at_exit(tmp_path: Path) -> None:
    import subprocess
    import sys
    import textwrap

    log = tmp_path / "shut-down"
    script = textwrap.dedent(f"""
        from zoopipe_core.engines import MultiProcessEngine

        class Probe(MultiProcessEngine):
            # A real engine that records when it is shut down.
            def __init__(self, label):
                super().__init__(max_workers=1)
                self.label = label
            def _shutdown(self, timeout):
                super()._shutdown(timeout)
                open({str(log)!r}, "a").write(self.label + "\\n")

        Probe("left running").start()  # nobody keeps it or shuts it down
        stopped = Probe("stopped")
        stopped.start()
        stopped.shutdown()
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert log.read_text().splitlines() == ["stopped", "left running"]
