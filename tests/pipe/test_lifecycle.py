"""Lifecycle: start(), wait(), shutdown(), context-manager use, live progress, failed runs."""

from __future__ import annotations

import contextlib
import itertools
import threading
import time

import pytest
from conftest import assert_completed, assert_counts_add_up, assert_nothing_published, count_lines

from zoopipe_core import (
    CSVInputAdapter,
    JSONOutputAdapter,
    MemoryOutputAdapter,
    Pipe,
    PipelineError,
    PipeStatus,
    PyGeneratorInputAdapter,
    SingleThreadExecutor,
    Transform,
)


def endless():
    for i in itertools.count():
        yield {"n": i}


def slow(records):
    time.sleep(0.01)
    return records


def slow_pipe(tmp_path, transform=slow, **kwargs) -> Pipe:
    return Pipe(
        PyGeneratorInputAdapter(endless()),
        JSONOutputAdapter(str(tmp_path / "out.jsonl")),
        error_output_adapter=JSONOutputAdapter(str(tmp_path / "errors.jsonl")),
        post_validation=[transform],
        executor=SingleThreadExecutor(batch_size=10),
        **kwargs,
    )


def wait_until(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.005)


def test_start_and_wait(tmp_path):
    target = tmp_path / "out.jsonl"
    pipe = Pipe(PyGeneratorInputAdapter({"n": i} for i in range(5000)), JSONOutputAdapter(str(target)))
    assert pipe.report.status == PipeStatus.PENDING
    pipe.start()
    assert pipe.wait(timeout=30) is True
    assert_completed(pipe.report, read=5000, written=5000, errors=0)
    assert count_lines(target) == 5000


def test_wait_times_out_while_running_then_shutdown_cancels(tmp_path):
    pipe = slow_pipe(tmp_path)
    pipe.start()
    assert pipe.wait(timeout=0.2) is False
    assert pipe.report.status == PipeStatus.RUNNING and not pipe.report.is_finished
    pipe.shutdown()
    assert pipe.report.status == PipeStatus.CANCELLED
    assert_counts_add_up(pipe.report)


def test_shutdown_stops_a_slow_pipe_promptly_and_publishes_nothing(tmp_path):
    pipe = slow_pipe(tmp_path)
    pipe.start()
    wait_until(lambda: pipe.report.total_processed > 0)
    began = time.monotonic()
    pipe.shutdown(timeout=5)
    assert time.monotonic() - began < 2
    report = pipe.report
    assert report.status == PipeStatus.CANCELLED and report.is_finished
    assert not report.has_error
    assert_counts_add_up(report)
    assert report.total_processed > 0
    assert_nothing_published(tmp_path, "out.jsonl", "errors.jsonl")
    assert pipe.wait(0) is True  # the thread has ended


def test_shutdown_interrupts_a_transform_that_never_returns(tmp_path):
    entered = threading.Event()

    def spin(records):
        entered.set()
        while True:  # pure Python: interruptible
            pass

    pipe = slow_pipe(tmp_path, transform=spin)
    pipe.start()
    assert entered.wait(10)
    began = time.monotonic()
    pipe.shutdown(timeout=0.5)
    assert time.monotonic() - began < 3
    assert pipe.report.status == PipeStatus.CANCELLED
    assert_counts_add_up(pipe.report)
    assert_nothing_published(tmp_path, "out.jsonl", "errors.jsonl")


def test_shutdown_calls_teardown(tmp_path):
    class Tracked(Transform):
        calls: list[str]

        def __init__(self):
            self.calls = []

        def setup(self):
            self.calls.append("setup")

        def __call__(self, records):
            time.sleep(0.01)
            return records

        def teardown(self):
            self.calls.append("teardown")

    tracked = Tracked()
    pipe = slow_pipe(tmp_path, transform=tracked)
    pipe.start()
    wait_until(lambda: pipe.report.total_processed > 0)
    pipe.shutdown()
    assert pipe.report.status == PipeStatus.CANCELLED
    assert_counts_add_up(pipe.report)
    assert tracked.calls == ["setup", "teardown"]


def test_shutdown_of_a_finished_or_unstarted_pipe_is_harmless(tmp_path):
    pipe = Pipe(PyGeneratorInputAdapter([{"n": 1}]), MemoryOutputAdapter())
    pipe.shutdown()
    pipe.start()
    assert pipe.wait(10)
    pipe.shutdown()
    assert_completed(pipe.report, read=1, written=1, errors=0)


def test_live_progress_while_running(tmp_path):
    pipe = slow_pipe(tmp_path)
    pipe.start()
    try:
        wait_until(lambda: pipe.report.total_processed >= 20)
        first = pipe.report.total_processed
        wait_until(lambda: pipe.report.total_processed > first)
        assert pipe.report.status == PipeStatus.RUNNING and not pipe.report.is_finished
        assert pipe.report.items_per_second > 0
        wait_until(lambda: pipe.report.success_count > 0)
    finally:
        pipe.shutdown()
    assert_counts_add_up(pipe.report)


def test_live_counts_of_a_finite_run_end_exact(tmp_path):
    seen = []

    def watch(records):
        seen.append(pipe.report.total_processed)
        return records

    pipe = Pipe(
        PyGeneratorInputAdapter({"n": i} for i in range(50)),
        MemoryOutputAdapter(),
        post_validation=[watch],
        executor=SingleThreadExecutor(batch_size=10),
    )
    pipe.start()
    assert pipe.wait(10)
    assert_completed(pipe.report, read=50, written=50, errors=0)
    # Records count once written: the batch in the transform is not yet among them.
    assert len(seen) == 5 and seen == sorted(seen) and seen[-1] <= 40


def test_context_manager_waits_for_the_end(tmp_path):
    target = tmp_path / "out.jsonl"
    with Pipe(PyGeneratorInputAdapter({"n": i} for i in range(1000)), JSONOutputAdapter(str(target))) as pipe:
        assert pipe.report.status in (PipeStatus.RUNNING, PipeStatus.COMPLETED)
    assert_completed(pipe.report, read=1000, written=1000, errors=0)
    assert count_lines(target) == 1000


def test_context_manager_cancels_on_an_exception(tmp_path):
    with pytest.raises(KeyboardInterrupt), slow_pipe(tmp_path) as pipe:
        wait_until(lambda: pipe.report.total_processed > 0)
        raise KeyboardInterrupt
    assert pipe.report.status == PipeStatus.CANCELLED
    assert_counts_add_up(pipe.report)
    assert_nothing_published(tmp_path, "out.jsonl", "errors.jsonl")


def test_a_failed_run_raises_and_never_reports_success(tmp_path):
    pipe = Pipe(
        CSVInputAdapter(str(tmp_path / "missing.csv")), JSONOutputAdapter(str(tmp_path / "out.jsonl"))
    )
    with pytest.raises(PipelineError, match=r"missing.csv"):
        pipe.run()
    report = pipe.report
    assert report.status == PipeStatus.FAILED
    assert report.has_error and report.is_finished
    assert isinstance(report.exception, PipelineError)
    assert report.success_count == 0
    assert_counts_add_up(report)
    assert report.to_dict()["status"] == "failed"
    assert_nothing_published(tmp_path, "out.jsonl")


def test_a_failed_run_after_some_batches_reports_failed_not_partial_success(tmp_path):
    def rows():
        for i in range(500):
            yield {"n": i}
        raise ConnectionError("cursor lost")

    pipe = Pipe(
        PyGeneratorInputAdapter(rows()),
        JSONOutputAdapter(str(tmp_path / "out.jsonl")),
        executor=SingleThreadExecutor(batch_size=50),
    )
    with pytest.raises(PipelineError, match="cursor lost") as info:
        pipe.run()
    assert isinstance(info.value.__cause__, ConnectionError)
    assert pipe.report.status == PipeStatus.FAILED and pipe.report.has_error
    assert_counts_add_up(pipe.report)
    assert_nothing_published(tmp_path, "out.jsonl")


def test_a_failed_started_run_is_reported_by_wait(tmp_path):
    pipe = Pipe(CSVInputAdapter(str(tmp_path / "missing.csv")), MemoryOutputAdapter())
    pipe.start()
    assert pipe.wait(10) is True
    assert pipe.report.status == PipeStatus.FAILED
    assert pipe.report.has_error
    assert isinstance(pipe.report.exception, PipelineError)
    assert "missing.csv" in str(pipe.report.exception)
    assert_counts_add_up(pipe.report)


def test_a_pipe_cannot_start_twice_at_once(tmp_path):
    pipe = slow_pipe(tmp_path)
    pipe.start()
    try:
        with pytest.raises(RuntimeError, match="already running"):
            pipe.start()
        with pytest.raises(RuntimeError, match="already running"):
            pipe.run()
    finally:
        pipe.shutdown()
    assert_counts_add_up(pipe.report)


def test_wait_before_start_is_an_error():
    with pytest.raises(RuntimeError, match="not started"):
        Pipe(PyGeneratorInputAdapter([]), MemoryOutputAdapter()).wait()


def test_restart_after_shutdown_runs_again(tmp_path):
    pipe = slow_pipe(tmp_path)
    pipe.start()
    wait_until(lambda: pipe.report.total_processed > 0)
    pipe.shutdown()
    cancelled = pipe.report
    pipe.input_adapter = PyGeneratorInputAdapter({"n": i} for i in range(30))
    pipe.start()
    assert pipe.wait(10)
    assert cancelled.status == PipeStatus.CANCELLED
    assert_completed(pipe.report, read=30, written=30, errors=0)
    assert count_lines(tmp_path / "out.jsonl") == 30


def test_shutdown_stops_a_slow_generator_source(tmp_path):
    def trickle():
        for i in itertools.count():
            time.sleep(0.005)
            yield {"n": i}

    pipe = Pipe(
        PyGeneratorInputAdapter(trickle()),
        JSONOutputAdapter(str(tmp_path / "out.jsonl")),
        executor=SingleThreadExecutor(batch_size=100_000),
    )
    pipe.start()
    time.sleep(0.2)
    began = time.monotonic()
    pipe.shutdown(timeout=0.5)
    assert time.monotonic() - began < 3
    assert pipe.wait(0)
    assert pipe.report.status == PipeStatus.CANCELLED and pipe.report.is_finished
    assert_counts_add_up(pipe.report)
    assert_nothing_published(tmp_path, "out.jsonl")


def test_shutdown_stops_a_slow_python_writer(tmp_path):
    from zoopipe_core import BatchWriter, OutputAdapter

    class SlowWriter(BatchWriter):
        def write_batch(self, records):
            for _ in records:
                time.sleep(0.005)

        def commit(self):
            raise AssertionError("a cancelled run must not commit")

        def abort(self):
            aborted.append(True)

    class SlowOutput(OutputAdapter):
        def open_writer(self):
            return SlowWriter()

    aborted: list[bool] = []
    pipe = Pipe(
        PyGeneratorInputAdapter({"n": i} for i in range(100_000)),
        SlowOutput(),
        executor=SingleThreadExecutor(batch_size=50_000),
    )
    pipe.start()
    time.sleep(0.2)
    began = time.monotonic()
    pipe.shutdown(timeout=0.5)
    assert time.monotonic() - began < 3
    assert pipe.report.status == PipeStatus.CANCELLED
    assert_counts_add_up(pipe.report)
    assert aborted == [True]


def test_a_transform_catching_exception_cannot_swallow_the_interruption(tmp_path):
    def stubborn(records):
        entered.set()
        while True:
            with contextlib.suppress(Exception):
                time.sleep(0.001)

    entered = threading.Event()
    pipe = slow_pipe(tmp_path, transform=stubborn)
    pipe.start()
    assert entered.wait(10)
    began = time.monotonic()
    pipe.shutdown(timeout=0.3)
    assert time.monotonic() - began < 3
    assert pipe.report.status == PipeStatus.CANCELLED
    assert_counts_add_up(pipe.report)
    assert_nothing_published(tmp_path, "out.jsonl", "errors.jsonl")


def test_a_pipe_blocked_in_c_code_reports_a_timeout_and_still_ends_cancelled(tmp_path):
    release = threading.Event()

    def blocked(records):
        entered.set()
        release.wait()  # blocked outside Python bytecode
        return records

    entered = threading.Event()
    pipe = slow_pipe(tmp_path, transform=blocked)
    pipe.start()
    assert entered.wait(10)
    with pytest.raises(TimeoutError, match="did not stop"):
        pipe.shutdown(timeout=0.2)
    assert not pipe.report.is_finished
    release.set()
    assert pipe.wait(10)
    assert pipe.report.status == PipeStatus.CANCELLED and pipe.report.is_finished
    assert_counts_add_up(pipe.report)
    assert_nothing_published(tmp_path, "out.jsonl", "errors.jsonl")


def test_ctrl_c_stops_run_promptly_cancels_and_publishes_nothing(tmp_path):
    import os
    import signal

    # No Python stage: the calling thread waits in Rust, which must still notice Ctrl-C.
    pipe = Pipe(
        PyGeneratorInputAdapter({"n": i} for i in range(5_000_000)),
        JSONOutputAdapter(str(tmp_path / "out.jsonl")),
    )
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
    # Ctrl-C as in a terminal: a test run started in the background (`make test &`) inherits
    # SIGINT ignored, and Python then installs no handler for it.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    began = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            pipe.run()
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert time.monotonic() - began < 3
    assert pipe.report.status == PipeStatus.CANCELLED and pipe.report.is_finished
    assert isinstance(pipe.report.exception, KeyboardInterrupt)
    assert pipe.report.total_processed < 5_000_000
    assert_counts_add_up(pipe.report)
    assert_nothing_published(tmp_path, "out.jsonl")
