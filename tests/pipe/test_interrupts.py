"""Ctrl-C, SIGTERM and exit while runs go on: real processes, signalled mid-run.

Each script runs a 400,000-row CSV through a slow transform that creates a marker file on its
first batch; the test waits for the marker, signals the process, and checks that it stops within
a few seconds with the right status, without a fatal error from the interpreter, leaving neither
a published output nor a temporary file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROWS = 400_000
#: Seconds a signalled run may take to stop (a debug build on a loaded 2-core machine).
STOP_WITHIN = 5.0

PIPE_MODULE = textwrap.dedent(
    """
    import os, time
    from pydantic import BaseModel
    from zoopipe_core import CSVInputAdapter, JSONOutputAdapter, Pipe

    class Row(BaseModel):
        id: int
        name: str
        score: int

    def slow(records):
        if not os.path.exists("started"):
            open("started", "w").close()
        time.sleep(0.02)
        return records

    def make_pipe():
        return Pipe(CSVInputAdapter("in.csv"), JSONOutputAdapter("out.jsonl"),
                    error_output_adapter=JSONOutputAdapter("errors.jsonl"), schema_model=Row,
                    post_validation=[slow])

    pipe = make_pipe()
    """
)

SCRIPTS = {
    "start-wait": "from slowpipe import pipe\npipe.start()\npipe.wait()\n",
    "with": "from slowpipe import pipe\nwith pipe:\n    pass\n",
    "run": "from slowpipe import pipe\npipe.run()\n",
    "manager-run": textwrap.dedent(
        """
        from zoopipe_core import PipeManager
        from slowpipe import make_pipe
        PipeManager.parallelize_pipe(make_pipe(), workers=2, should_merge=True).run(show_progress=False)
        """
    ),
    "manager-start-wait": textwrap.dedent(
        """
        from zoopipe_core import PipeManager
        from slowpipe import make_pipe
        manager = PipeManager.parallelize_pipe(make_pipe(), workers=2, should_merge=True)
        manager.start()
        manager.wait()
        """
    ),
    # The script ends while its pipe still runs: the exit hook stops it.
    "exit-while-running": textwrap.dedent(
        """
        import os, time
        from slowpipe import pipe
        pipe.start()
        while not os.path.exists("started"):
            time.sleep(0.01)
        """
    ),
}


@pytest.fixture(scope="module")
def source_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("source") / "in.csv"
    with open(path, "w") as f:
        f.write("id,name,score\n")
        f.writelines(f"{i},user{i},{i % 97}\n" for i in range(ROWS))
    return path


@pytest.fixture
def project(tmp_path: Path, source_csv: Path) -> Path:
    os.symlink(source_csv, tmp_path / "in.csv")
    (tmp_path / "slowpipe.py").write_text(PIPE_MODULE)
    for name, text in SCRIPTS.items():
        (tmp_path / f"{name}.py").write_text(text)
    return tmp_path


def start(project: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(project)}
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=project,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_until_started(process: subprocess.Popen[str], project: Path) -> None:
    deadline = time.monotonic() + 60
    while not (project / "started").exists():
        assert process.poll() is None, f"the run ended before it started: {process.communicate()}"
        assert time.monotonic() < deadline, "the run did not start within 60 s"
        time.sleep(0.02)


def stop(process: subprocess.Popen[str], signum: int) -> tuple[int, str, float]:
    """Signal the process; return its exit status as a shell reports it (128 + the signal that
    ended it), its stderr, and the seconds it took to end."""
    sent = time.monotonic()
    process.send_signal(signum)
    try:
        _, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(
            f"the process did not end within 60 s of {signal.Signals(signum).name}"
        ) from None
    took = time.monotonic() - sent
    status = 128 - process.returncode if process.returncode < 0 else process.returncode
    return status, stderr, took


def assert_clean(project: Path, stderr: str) -> None:
    assert "Fatal Python error" not in stderr, stderr
    assert "Exception ignored" not in stderr, stderr
    names = sorted(os.listdir(project))
    assert "out.jsonl" not in names and "errors.jsonl" not in names, f"a stopped run published: {names}"
    leftovers = [n for n in names if n.endswith(".tmp") or ".part-" in n]
    assert leftovers == [], f"temporary or part files left behind: {leftovers}"


@pytest.mark.parametrize("form", ["start-wait", "with", "run"])
@pytest.mark.parametrize("attempt", range(3))
def test_ctrl_c_stops_a_script_promptly_and_cleanly(project: Path, form: str, attempt: int) -> None:
    process = start(project, f"{form}.py")
    wait_until_started(process, project)
    status, stderr, took = stop(process, signal.SIGINT)
    # A plain script keeps Python's semantics: KeyboardInterrupt, raised once the run stopped
    # and cleaned up, then death by SIGINT (exit status 130).
    assert status == 130, stderr
    assert stderr.rstrip().endswith("KeyboardInterrupt"), stderr
    assert took < STOP_WITHIN, f"the run took {took:.1f} s to stop"
    assert_clean(project, stderr)


INTERRUPTED_LINE = "zoopipe: interrupted; the run was stopped and nothing was published"


@pytest.mark.parametrize("attempt", range(3))
def test_ctrl_c_stops_zoopipe_run_with_one_line(project: Path, attempt: int) -> None:
    process = start(project, "-m", "zoopipe_core.cli", "run", "--quiet", "slowpipe:make_pipe")
    wait_until_started(process, project)
    status, stderr, took = stop(process, signal.SIGINT)
    assert status == 130, stderr
    assert "Traceback" not in stderr, stderr
    assert stderr.strip().splitlines() == [INTERRUPTED_LINE]
    assert took < STOP_WITHIN, f"the run took {took:.1f} s to stop"
    assert_clean(project, stderr)


def test_ctrl_c_with_progress_ends_with_the_cancelled_summary_and_one_line(project: Path) -> None:
    process = start(project, "-m", "zoopipe_core.cli", "run", "slowpipe:make_pipe")
    wait_until_started(process, project)
    status, stderr, _ = stop(process, signal.SIGINT)
    assert status == 130, stderr
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert lines[-1] == INTERRUPTED_LINE and lines[-2].startswith("cancelled: rows"), stderr
    assert_clean(project, stderr)


def test_a_run_still_going_at_exit_is_stopped_and_cleaned(project: Path) -> None:
    process = start(project, "exit-while-running.py")
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "was still running when Python exited" in stderr, stderr
    assert_clean(project, stderr)


def test_a_run_that_ignores_the_stop_does_not_crash_the_interpreter_at_exit(project: Path) -> None:
    """A transform that swallows the interruption outlives the exit hook's wait: its thread
    must never take the GIL again once Python finalises (it would abort the process)."""
    (project / "stubborn.py").write_text(
        textwrap.dedent(
            """
        import os, time
        import zoopipe_core.pipe.pipe
        from slowpipe import make_pipe
        zoopipe_core.pipe.pipe.STOP_WAIT = 0.5

        def stubborn(records):
            while True:
                try:
                    time.sleep(0.01)
                except BaseException:
                    pass

        pipe = make_pipe()
        pipe.post_validation.append(stubborn)
        pipe.start()
        while not os.path.exists("started"):
            time.sleep(0.01)
        time.sleep(0.2)
        """
        )
    )
    process = start(project, "stubborn.py")
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "Fatal Python error" not in stderr, stderr


def test_a_killed_runs_temporary_files_are_removed_by_the_next_run(project: Path) -> None:
    process = start(project, "start-wait.py")
    wait_until_started(process, project)
    process.kill()
    process.communicate(timeout=60)
    left = [n for n in os.listdir(project) if n.endswith(".tmp")]
    assert len(left) == 2, f"expected the killed run's two temporary files: {left}"

    sys.path.insert(0, str(project))
    cwd = os.getcwd()
    try:
        os.chdir(project)
        import slowpipe

        pipe = slowpipe.make_pipe()
        pipe.post_validation.clear()
        pipe.run()
    finally:
        os.chdir(cwd)
        sys.path.remove(str(project))
        sys.modules.pop("slowpipe", None)
    assert [n for n in os.listdir(project) if n.endswith(".tmp")] == []
    assert len((project / "out.jsonl").read_bytes().splitlines()) == ROWS


@pytest.mark.parametrize("form", ["manager-run", "manager-start-wait"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_to_the_driver_stops_a_manager_and_its_workers_cleanly(
    project: Path, form: str, signum: int
) -> None:
    process = start(project, f"{form}.py")
    wait_until_started(process, project)  # a worker's transform created the marker
    status, stderr, took = stop(process, signum)
    assert status == 128 + signum, stderr
    assert took < STOP_WITHIN + 5.0, f"the run took {took:.1f} s to stop"  # workers stop too
    assert_clean(project, stderr)
    assert "unresolved" not in stderr, stderr
