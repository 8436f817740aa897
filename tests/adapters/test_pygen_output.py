"""PyGeneratorOutputAdapter: an output the caller iterates while the pipe runs, or after it,
with bounded memory; a failed or cancelled run ends the iteration with its error."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from pydantic import BaseModel

from zoopipe_core import (
    JSONInputAdapter,
    JSONOutputAdapter,
    Pipe,
    PipelineError,
    PipeManager,
    PyGeneratorInputAdapter,
    PyGeneratorOutputAdapter,
    SingleThreadExecutor,
)
from zoopipe_core.adapters.resolve import resolve_output_adapter


def _numbers(n: int):
    return PyGeneratorInputAdapter({"n": i} for i in range(n))


def test_iterate_while_the_pipe_runs_in_the_background() -> None:
    out = PyGeneratorOutputAdapter(queue_size=50)
    pipe = Pipe(_numbers(5000), out, executor=SingleThreadExecutor(batch_size=100))
    pipe.start()
    rows = list(out)
    assert rows == [{"n": i} for i in range(5000)]
    assert pipe.wait(10) and pipe.report.success_count == 5000


def test_memory_is_bounded_the_pipe_waits_for_the_consumer() -> None:
    out = PyGeneratorOutputAdapter(queue_size=20)
    pipe = Pipe(_numbers(20_000), out, executor=SingleThreadExecutor(batch_size=100))
    pipe.start()
    time.sleep(0.5)  # nobody iterates yet: the pipe must be waiting, not buffering everything
    assert len(out._stream.rows) == 20
    assert pipe.report.total_processed < 20_000 and not pipe.report.is_finished
    seen = 0
    for _row in out:
        assert len(out._stream.rows) <= 20
        seen += 1
    assert seen == 20_000 and pipe.wait(10)


def test_iterate_after_run_when_the_output_fits_in_the_queue() -> None:
    out = PyGeneratorOutputAdapter()
    report = Pipe(_numbers(300), out).run()
    assert report.success_count == 300
    assert [row["n"] for row in out] == list(range(300))
    assert list(out) == []  # a stream: read once


def test_run_with_more_than_the_queue_and_no_consumer_fails_at_once_saying_what_to_do() -> None:
    out = PyGeneratorOutputAdapter(queue_size=10)
    started = time.monotonic()
    with pytest.raises(PipelineError, match=r"nothing is iterating it: pipe.run\(\) returns only at the end"):
        Pipe(_numbers(1000), out).run()
    assert time.monotonic() - started < 5
    rows = []
    with pytest.raises(PipelineError, match="did not finish"):
        for row in out:
            rows.append(row)
    assert len(rows) == 10  # what was handed over, then the error


def test_a_consumer_thread_with_run_in_the_foreground() -> None:
    out = PyGeneratorOutputAdapter(queue_size=5)
    rows: list[dict] = []
    consumer = threading.Thread(target=lambda: rows.extend(out))
    consumer.start()
    time.sleep(0.2)  # the consumer waits for the run
    assert Pipe(_numbers(500), out).run().success_count == 500
    consumer.join(10)
    assert len(rows) == 500


def _consume_in_thread(out: PyGeneratorOutputAdapter) -> tuple[threading.Thread, dict]:
    result: dict = {"rows": 0}

    def consume() -> None:
        try:
            for _ in out:
                result["rows"] += 1
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    return thread, result


def test_a_run_that_fails_before_writing_ends_the_iteration_with_its_reason(tmp_path: Path) -> None:
    out = PyGeneratorOutputAdapter()
    thread, result = _consume_in_thread(out)
    pipe = Pipe(JSONInputAdapter(str(tmp_path / "missing.jsonl")), out)
    pipe.start()
    thread.join(10)
    assert not thread.is_alive(), "the consumer must not hang"
    assert isinstance(result["error"], PipelineError) and "input file not found" in str(result["error"])


def test_a_run_that_fails_midway_ends_the_iteration_with_its_reason() -> None:
    def rows():
        yield from ({"n": i} for i in range(250))
        raise RuntimeError("the database went away")

    out = PyGeneratorOutputAdapter(queue_size=10)
    thread, result = _consume_in_thread(out)
    pipe = Pipe(PyGeneratorInputAdapter(rows()), out, executor=SingleThreadExecutor(batch_size=50))
    pipe.start()
    thread.join(10)
    assert not thread.is_alive()
    assert "the database went away" in str(result["error"]) and result["rows"] <= 250
    assert pipe.report.status.value == "failed"


def test_a_cancelled_run_ends_the_iteration() -> None:
    out = PyGeneratorOutputAdapter(queue_size=10)
    pipe = Pipe(_numbers(100_000), out, executor=SingleThreadExecutor(batch_size=100))
    pipe.start()
    iterator = iter(out)
    next(iterator)
    pipe.shutdown(timeout=1.0)  # the pipe waits on the full queue: shutdown interrupts it
    assert pipe.report.status.value == "cancelled"
    with pytest.raises(PipelineError, match="did not finish"):
        for _ in iterator:
            pass


def test_a_consumer_that_stops_early_fails_the_run_instead_of_blocking_it() -> None:
    out = PyGeneratorOutputAdapter(queue_size=10)
    pipe = Pipe(_numbers(10_000), out, executor=SingleThreadExecutor(batch_size=100))
    pipe.start()
    for row in out:
        if row["n"] == 5:
            break
    assert pipe.wait(10)
    assert pipe.report.status.value == "failed"
    assert "stopped iterating PyGeneratorOutputAdapter after 6 records" in str(pipe.report.exception)


def test_registered_as_generator_and_refused_by_a_manager(tmp_path: Path) -> None:
    assert isinstance(resolve_output_adapter("generator"), PyGeneratorOutputAdapter)
    assert isinstance(resolve_output_adapter("generator", queue_size=3), PyGeneratorOutputAdapter)
    (tmp_path / "in.jsonl").write_text('{"n": 1}\n')
    pipe = Pipe(JSONInputAdapter(str(tmp_path / "in.jsonl")), PyGeneratorOutputAdapter())
    with pytest.raises(
        ValueError, match="PyGeneratorOutputAdapter, which would hand the records over in the worker"
    ):
        PipeManager([pipe])
    with pytest.raises(ValueError, match="queue_size"):
        PyGeneratorOutputAdapter(queue_size=0)


def test_valid_rows_stream_and_errors_go_to_the_error_output(tmp_path: Path) -> None:
    class Row(BaseModel):
        n: int

    out = PyGeneratorOutputAdapter(queue_size=5)
    errors = str(tmp_path / "errors.jsonl")
    pipe = Pipe(
        PyGeneratorInputAdapter([{"n": "1"}, {"n": "x"}, {"n": "3"}]),
        out,
        error_output_adapter=JSONOutputAdapter(errors),
        schema_model=Row,
    )
    pipe.start()
    assert list(out) == [{"n": 1}, {"n": 3}]
    assert pipe.wait(10) and pipe.report.error_count == 1
