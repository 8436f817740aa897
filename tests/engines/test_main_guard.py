"""Scripts without `if __name__ == "__main__":` fail at once when an engine's workers would
import them again (Dask's LocalCluster, MultiProcessEngine with spawn), instead of re-running
the script in every worker and failing long after ("Nanny failed to start")."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from zoopipe_core.engines import MultiProcessEngine, UnguardedMainError, inside_main_guard

MARKER = "SCRIPT-BODY-RAN"


def _script(tmp_path: Path, engine: str, guarded: bool) -> Path:
    source = tmp_path / "in.jsonl"
    source.write_text('{"n": 1}\n{"n": 2}\n')
    run = (
        "from zoopipe_core import JSONInputAdapter, JSONOutputAdapter, Pipe, PipeManager\n"
        "from zoopipe_core.engines import MultiProcessEngine\n"
        f"pipe = Pipe(JSONInputAdapter({str(source)!r}), "
        f"JSONOutputAdapter({str(tmp_path / 'out.jsonl')!r}))\n"
        f"report = PipeManager([pipe], engine={engine}).run(show_progress=False)\n"
        "print('rows', report.success_count, flush=True)\n"
    )
    body = f"print({MARKER!r}, flush=True)\n"
    body += ('if __name__ == "__main__":\n' + textwrap.indent(run, "    ")) if guarded else run
    script = tmp_path / "job.py"
    script.write_text(body)
    return script


def _run(script: Path, timeout: float) -> tuple[subprocess.CompletedProcess[str], float]:
    began = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=timeout, cwd=script.parent
    )
    return result, time.monotonic() - began


@pytest.mark.dask
def test_dask_from_an_unguarded_script_fails_at_once_saying_what_to_do(tmp_path):
    # Before: the script body ran three times and Dask failed with "Nanny failed to start"
    # after its timeouts. Now the driver refuses before starting any worker process.
    result, elapsed = _run(_script(tmp_path, '"dask"', guarded=False), timeout=120)
    assert result.returncode != 0, result.stdout
    assert elapsed < 20, f"took {elapsed:.1f} s to fail"
    assert result.stdout.count(MARKER) == 1, result.stdout
    assert "UnguardedMainError" in result.stderr
    assert 'if __name__ == "__main__":' in result.stderr
    assert "DaskEngine(address=" in result.stderr
    assert f"{tmp_path / 'job.py'} (line 5)" in result.stderr
    assert "Nanny" not in result.stderr


def test_spawned_multiprocess_engine_from_an_unguarded_script_fails_at_once(tmp_path):
    # The default engine forks on Linux and is safe; with spawn (the default on macOS and
    # Windows) its workers import the script again, like Dask's.
    script = _script(tmp_path, "MultiProcessEngine(max_workers=1, mp_context='spawn')", False)
    result, elapsed = _run(script, timeout=60)
    assert result.returncode != 0 and elapsed < 20, (elapsed, result.stdout)
    assert result.stdout.count(MARKER) == 1, result.stdout
    assert "UnguardedMainError" in result.stderr and "mp_context='fork'" in result.stderr


@pytest.mark.parametrize(
    "engine", ["MultiProcessEngine(max_workers=1, mp_context='spawn')", "MultiProcessEngine(max_workers=1)"]
)
def test_a_guarded_script_or_a_forking_engine_runs(tmp_path, engine):
    guarded = "spawn" in engine  # the forking default runs even unguarded
    result, _ = _run(_script(tmp_path, engine, guarded), timeout=60)
    assert result.returncode == 0, result.stderr
    assert "rows 2" in result.stdout


def test_an_engine_started_while_a_worker_imports_the_script_fails_at_once(monkeypatch):
    # What a spawned worker sees when the driver's check could not: it is still importing
    # the main script (multiprocessing sets _inheriting meanwhile) and that starts an engine.
    monkeypatch.setattr(multiprocessing.current_process(), "_inheriting", True, raising=False)
    engine = MultiProcessEngine(max_workers=1)
    with pytest.raises(UnguardedMainError, match=r"was importing .* again") as caught:
        engine.start()
    assert 'if __name__ == "__main__":' in str(caught.value)
    assert not engine.is_running


@pytest.mark.parametrize(
    ("source", "line", "guarded"),
    [
        ("run()\n", 1, False),
        ('if __name__ == "__main__":\n    run()\n', 2, True),
        ("if '__main__' == __name__:\n    x = 1\n    run()\n", 3, True),
        ('if __name__ != "__main__":\n    pass\nelse:\n    run()\n', 4, True),
        ('if __name__ == "__main__":\n    pass\nrun()\n', 3, False),
        ("if True:\n    run()\n", 2, False),
        (
            "def main():\n    run()\n\nif __name__ == '__main__':\n    try:\n        main()\n"
            "    finally:\n        pass\n",
            6,
            True,
        ),
    ],
)
def test_the_guard_is_recognised(tmp_path, source, line, guarded):
    import sys as _sys

    path = tmp_path / "script.py"
    path.write_text(source)
    assert inside_main_guard(str(path), line, _sys._getframe()) is guarded


def test_unreadable_source_is_never_refused(tmp_path):
    import sys as _sys

    assert inside_main_guard(str(tmp_path / "gone.py"), 1, _sys._getframe())
