"""Checkpoints and progress of ParallelMap (on local processes): a run killed with SIGKILL halfway
resumes computing only the missing items; another function's journal is refused; failures are
computed again unless replay is asked; progress off a terminal is logged."""

from __future__ import annotations

import functools
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zoopipe_core import ParallelMap
from zoopipe_core.parallel.map.api import journal_identity
from zoopipe_core.parallel.map.journal import (
    CheckpointMismatch,
    Journal,
    function_fingerprint,
    function_label,
)
from zoopipe_core.testing import wait_for
from zoopipe_core.testing.map_tasks import fail_on, flaky, record_call

ITEMS = 400

_RUN = f"""
import functools, sys
from zoopipe_core import ParallelMap
from zoopipe_core.parallel.map.api import journal_identity
from zoopipe_core.testing.map_tasks import record_call
fn = functools.partial(record_call, sys.argv[1], seconds=0.01)
for _ in ParallelMap(fn, engine="multiprocess", checkpoint_path=sys.argv[2]).imap(range({ITEMS})):
    pass
print("finished")
"""


def _calls(directory: Path) -> int:
    return sum(1 for _ in directory.iterdir())


def _settled(directory: Path) -> bool:
    """No new call for half a second: the killed driver's orphaned workers have ended."""
    before = _calls(directory)
    time.sleep(0.5)
    return _calls(directory) == before


def test_a_run_killed_halfway_resumes_with_only_the_missing_items(tmp_path):
    calls, journal_path = tmp_path / "calls", tmp_path / "square.journal"
    calls.mkdir()
    driver = subprocess.Popen([sys.executable, "-c", _RUN, str(calls), str(journal_path)])
    try:
        wait_for(lambda: _calls(calls) >= ITEMS // 2, "the first run to compute half the items")
    finally:
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
    wait_for(lambda: _settled(calls), "the killed run's workers to end")

    fn = functools.partial(record_call, str(calls), seconds=0.01)
    with Journal.open(journal_path, function_fingerprint(fn), function_label(fn)) as journal:
        recorded = len(journal.recorded)
    assert 0 < recorded < ITEMS, recorded

    before = _calls(calls)
    results = ParallelMap(fn, engine="multiprocess", checkpoint_path=journal_path).map(range(ITEMS))
    assert results == [x * x for x in range(ITEMS)]
    assert _calls(calls) - before == ITEMS - recorded

    # A third run computes nothing: every item is recorded now.
    before = _calls(calls)
    assert ParallelMap(fn, engine="multiprocess", checkpoint_path=journal_path).map(range(ITEMS)) == results
    assert _calls(calls) == before


def test_a_journal_of_another_function_is_refused(tmp_path):
    journal_path = tmp_path / "run.journal"
    assert ParallelMap(abs, engine="multiprocess", checkpoint_path=journal_path).map([-1, -2]) == [1, 2]
    other = ParallelMap(str, engine="multiprocess", checkpoint_path=journal_path)
    with pytest.raises(CheckpointMismatch, match="abs"):
        other.map([1])


def test_a_checkpoint_path_set_after_construction_is_kept_and_checked(tmp_path):
    journal_path = str(tmp_path / "abs.journal")
    pm = ParallelMap(abs, engine="multiprocess")
    pm.checkpoint_path = journal_path
    assert pm.map([-1, -2]) == [1, 2]
    with Journal.open(journal_path, *journal_identity(abs)) as journal:
        assert set(journal.recorded) == {"i:-1", "i:-2"}
    other = ParallelMap(str, engine="multiprocess")
    other.checkpoint_path = journal_path
    with pytest.raises(CheckpointMismatch):
        other.map([-1])


def test_failures_are_computed_again_unless_replay_is_asked(tmp_path):
    attempts, journal_path = tmp_path / "attempts", tmp_path / "flaky.journal"
    attempts.mkdir()
    fn = functools.partial(flaky, str(attempts), failures=1)
    first = ParallelMap(fn, engine="multiprocess", checkpoint_path=journal_path).map(
        [(7,)], safe_exceptions=True
    )
    assert isinstance(first[0], ConnectionError)
    replayed = ParallelMap(fn, engine="multiprocess", checkpoint_path=journal_path, replay_failures=True)
    again = replayed.map([(7,)], safe_exceptions=True)
    assert isinstance(again[0], ConnectionError) and "attempt 1" in str(again[0])
    assert len(list(attempts.iterdir())) == 1  # replayed, not called
    computed = ParallelMap(fn, engine="multiprocess", checkpoint_path=journal_path).map([(7,)])
    assert computed == [7]
    assert len(list(attempts.iterdir())) == 2


def test_progress_logs_done_and_errors_off_a_terminal(caplog):
    caplog.set_level(logging.INFO, logger="zoopipe_core.map")
    out = ParallelMap(fail_on, engine="multiprocess", progress=True).map(range(10), safe_exceptions=True)
    assert isinstance(out[3], ValueError)
    text = caplog.text
    assert "10/10" in text and "1 error" in text, text
