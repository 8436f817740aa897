"""The progress display of ParallelMap: log lines off a terminal (counts, %, errors, rate, ETA, at
most one per interval), a tqdm bar on a terminal, nothing when disabled."""

from __future__ import annotations

import io
import logging
import subprocess
import sys

import pytest

from zoopipe_core.parallel.map.progress import MapProgress

LOGGER = "zoopipe_core.map"


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


def test_log_lines_off_a_terminal(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    stream = io.StringIO()
    with MapProgress("square", 10, stream=stream, interval=0) as progress:
        progress.update(done=3, errors=1)
        progress.update(done=7, errors=2)
    assert stream.getvalue() == ""
    first, second, final = lines(caplog)
    assert first.startswith("square: 3/10 items (30%), 1 errors, ")
    assert "items/s, ETA " in first
    assert second.startswith("square: 10/10 items (100%), 3 errors, ")
    assert final.startswith("square: 10/10 items (100%), 3 errors, ")
    assert "items/s, took " in final
    assert all(r.levelno == logging.INFO for r in caplog.records)


def test_log_lines_without_a_total(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    with MapProgress("gen", None, stream=io.StringIO(), interval=0) as progress:
        progress.update(done=5)
    assert lines(caplog)[0].startswith("gen: 5 items, 0 errors, ")
    assert "ETA" not in lines(caplog)[0]


def test_interval_limits_the_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    progress = MapProgress("square", 1000, stream=io.StringIO(), interval=3600)
    for _ in range(100):
        progress.update(done=10, errors=1)
    progress.close()
    progress.close()
    progress.update(done=1)  # after close: ignored
    (final,) = lines(caplog)
    assert final.startswith("square: 1000/1000 items (100%), 100 errors, ")


def test_given_logger_is_used(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="my.app")
    with MapProgress("square", 2, stream=io.StringIO(), logger=logging.getLogger("my.app")) as progress:
        progress.update(done=2)
    assert [r.name for r in caplog.records] == ["my.app"]


def test_bar_on_a_terminal(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    terminal = FakeTerminal()
    with MapProgress("square", 10, stream=terminal) as progress:
        progress.update(done=4, errors=1)
        progress.update(done=6, errors=1)
    out = terminal.getvalue()
    assert "square" in out
    assert "10/10" in out
    assert "errors=2" in out
    assert "item/s" in out
    assert lines(caplog) == []


def test_disabled_writes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    for stream in (FakeTerminal(), io.StringIO()):
        with MapProgress("square", 10, stream=stream, enabled=False, interval=0) as progress:
            progress.update(done=10, errors=3)
        assert stream.getvalue() == ""
    assert lines(caplog) == []


def test_tqdm_is_imported_only_for_a_bar() -> None:
    probe = (
        "import io, sys\n"
        "from zoopipe_core.parallel.map.progress import MapProgress\n"
        "MapProgress('a', 3, enabled=False).update(1)\n"
        "with MapProgress('b', 3, stream=io.StringIO()) as p: p.update(1)\n"
        "print('tqdm' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"
