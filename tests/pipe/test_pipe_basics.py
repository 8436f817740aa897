"""Pipe: construction, run(), transforms (plain callables and Transform objects), the report."""

from __future__ import annotations

import pytest
from conftest import assert_completed, assert_counts_add_up, count_lines, read_jsonl
from pydantic import BaseModel

from zoopipe_core import (
    CSVInputAdapter,
    JSONOutputAdapter,
    MemoryOutputAdapter,
    Pipe,
    PipelineError,
    PipeReport,
    PipeStatus,
    PyGeneratorInputAdapter,
    SingleThreadExecutor,
    Transform,
)


class Person(BaseModel):
    id: int
    name: str


def test_generator_to_memory_copies_every_record_in_order():
    rows = [{"id": i, "name": f"n{i}"} for i in range(250)]
    out = MemoryOutputAdapter()
    report = Pipe(
        PyGeneratorInputAdapter(iter(rows)), out, executor=SingleThreadExecutor(batch_size=64)
    ).run()
    assert_completed(report, read=250, written=250, errors=0)
    assert out.records == rows


def test_run_returns_the_pipe_report():
    pipe = Pipe(PyGeneratorInputAdapter([{"a": 1}]), MemoryOutputAdapter())
    report = pipe.run()
    assert isinstance(report, PipeReport)
    assert report is pipe.report
    assert_completed(report, read=1, written=1, errors=0)


def test_csv_to_jsonl_file(write_csv, tmp_path):
    path = write_csv("people.csv", "id,name\n1,Ada\n2,Bob\n3,Cy\n")
    target = tmp_path / "people.jsonl"
    report = Pipe(CSVInputAdapter(path), JSONOutputAdapter(str(target)), schema_model=Person).run()
    assert_completed(report, read=3, written=3, errors=0)
    assert count_lines(target) == 3
    assert read_jsonl(target) == [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Bob"}, {"id": 3, "name": "Cy"}]


def test_adapters_may_be_given_as_paths(write_csv, tmp_path):
    path = write_csv("in.csv", "id,name\n1,Ada\n")
    target = tmp_path / "out.jsonl"
    report = Pipe(path, str(target), error_output_adapter=str(tmp_path / "errors.jsonl")).run()
    assert_completed(report, read=1, written=1, errors=0)
    assert read_jsonl(target) == [{"id": "1", "name": "Ada"}]
    assert count_lines(tmp_path / "errors.jsonl") == 0


def test_plain_callable_transform_changes_records():
    def upper(records):
        return [{**r, "name": r["name"].upper()} for r in records]

    out = MemoryOutputAdapter()
    report = Pipe(
        PyGeneratorInputAdapter([{"id": 1, "name": "ada"}, {"id": 2, "name": "bob"}]),
        out,
        post_validation=[upper],
    ).run()
    assert_completed(report, read=2, written=2, errors=0)
    assert out.records == [{"id": 1, "name": "ADA"}, {"id": 2, "name": "BOB"}]


def test_transform_returning_none_changes_records_in_place():
    def tag(records):
        for r in records:
            r["tag"] = "x"

    out = MemoryOutputAdapter()
    report = Pipe(PyGeneratorInputAdapter([{"id": 1}]), out, pre_validation=[tag]).run()
    assert_completed(report, read=1, written=1, errors=0)
    assert out.records == [{"id": 1, "tag": "x"}]


def test_pre_validation_sees_raw_records_and_post_validation_sees_validated_ones():
    seen: dict[str, object] = {}

    def pre(records):
        seen["pre"] = records[0]["id"]
        return records

    def post(records):
        seen["post"] = records[0]["id"]
        return records

    out = MemoryOutputAdapter()
    report = Pipe(
        PyGeneratorInputAdapter([{"id": "7", "name": "x"}]),
        out,
        schema_model=Person,
        pre_validation=[pre],
        post_validation=[post],
    ).run()
    assert_completed(report, read=1, written=1, errors=0)
    assert seen == {"pre": "7", "post": 7}
    assert out.records == [{"id": 7, "name": "x"}]


def test_transforms_run_in_the_order_given():
    def append(letter):
        def transform(records):
            return [{**r, "trail": r.get("trail", "") + letter} for r in records]

        return transform

    out = MemoryOutputAdapter()
    report = Pipe(
        PyGeneratorInputAdapter([{"id": 1, "name": "a"}]),
        out,
        schema_model=Person,
        pre_validation=[append("a"), append("b")],
        post_validation=[append("c"), append("d")],
    ).run()
    assert_completed(report, read=1, written=1, errors=0)
    # The model drops the unknown field "trail" written before validation.
    assert out.records == [{"id": 1, "name": "a", "trail": "cd"}]


class Recorder(Transform):
    def __init__(self):
        self.calls: list[str] = []

    def setup(self):
        self.calls.append("setup")

    def __call__(self, records):
        self.calls.append(f"batch:{len(records)}")
        return records

    def teardown(self):
        self.calls.append("teardown")


def test_transform_object_setup_and_teardown_wrap_the_run():
    recorder = Recorder()
    out = MemoryOutputAdapter()
    report = Pipe(
        PyGeneratorInputAdapter({"n": i} for i in range(5)),
        out,
        post_validation=[recorder],
        executor=SingleThreadExecutor(batch_size=2),
    ).run()
    assert_completed(report, read=5, written=5, errors=0)
    assert recorder.calls == ["setup", "batch:2", "batch:2", "batch:1", "teardown"]


def test_teardown_is_called_after_a_failed_run(tmp_path):
    recorder = Recorder()
    pipe = Pipe(
        CSVInputAdapter(str(tmp_path / "missing.csv")), MemoryOutputAdapter(), pre_validation=[recorder]
    )
    with pytest.raises(PipelineError):
        pipe.run()
    assert_counts_add_up(pipe.report, read=0)
    assert recorder.calls == ["setup", "teardown"]


def test_teardown_is_called_when_the_input_fails_mid_run():
    def rows():
        yield {"n": 1}
        yield {"n": 2}
        raise OSError("the database went away")

    recorder = Recorder()
    pipe = Pipe(
        PyGeneratorInputAdapter(rows()),
        MemoryOutputAdapter(),
        post_validation=[recorder],
        executor=SingleThreadExecutor(batch_size=1),
    )
    with pytest.raises(PipelineError, match="the database went away"):
        pipe.run()
    assert_counts_add_up(pipe.report)
    assert recorder.calls[0] == "setup" and recorder.calls[-1] == "teardown"


def test_teardown_is_called_when_another_transforms_setup_fails():
    class Broken(Transform):
        def setup(self):
            raise RuntimeError("no model file")

    recorder = Recorder()
    pipe = Pipe(
        PyGeneratorInputAdapter([{"n": 1}]), MemoryOutputAdapter(), pre_validation=[recorder, Broken()]
    )
    with pytest.raises(PipelineError, match="no model file"):
        pipe.run()
    assert_counts_add_up(pipe.report, read=0)
    assert pipe.report.status == PipeStatus.FAILED
    assert recorder.calls == ["setup", "teardown"]


def test_a_non_callable_transform_is_refused_up_front():
    with pytest.raises(TypeError, match="not callable"):
        Pipe(PyGeneratorInputAdapter([]), MemoryOutputAdapter(), post_validation=["upper"])


def test_schema_model_must_be_a_pydantic_model():
    with pytest.raises(TypeError, match="BaseModel"):
        Pipe(PyGeneratorInputAdapter([]), MemoryOutputAdapter(), schema_model=dict)


def test_report_fields_after_a_successful_run():
    out = MemoryOutputAdapter()
    report = Pipe(PyGeneratorInputAdapter({"n": i} for i in range(1000)), out).run()
    assert_completed(report, read=1000, written=1000, errors=0)
    assert report.is_finished
    assert report.status == PipeStatus.COMPLETED
    assert report.duration > 0
    assert report.items_per_second == pytest.approx(1000 / report.duration)
    assert report.ram_bytes > 1_000_000
    assert report.to_dict()["status"] == "completed"


def test_a_report_counts_errors_without_being_failed():
    out, errors = MemoryOutputAdapter(), MemoryOutputAdapter()
    report = Pipe(
        PyGeneratorInputAdapter([{"id": "1", "name": "a"}, {"id": "x", "name": "b"}]),
        out,
        error_output_adapter=errors,
        schema_model=Person,
    ).run()
    assert_completed(report, read=2, written=1, errors=1)
    assert len(out.records) == 1 and len(errors.records) == 1


def test_errors_without_an_error_output_are_kept_as_samples():
    out = MemoryOutputAdapter()
    report = Pipe(
        PyGeneratorInputAdapter([{"id": "x", "name": "a"}, {"id": "2", "name": "b"}]),
        out,
        schema_model=Person,
    ).run()
    assert_completed(report, read=2, written=1, errors=1)
    assert out.records == [{"id": 2, "name": "b"}]
    assert [s["line"] for s in report.error_samples] == [1]
    assert report.error_samples[0]["stage"] == "validation"


def test_an_empty_generator_completes_with_zero_records(tmp_path):
    target = tmp_path / "out.jsonl"
    report = Pipe(PyGeneratorInputAdapter([]), JSONOutputAdapter(str(target))).run()
    assert_completed(report, read=0, written=0, errors=0)
    assert count_lines(target) == 0


def test_a_pipe_can_run_twice_over_a_reusable_input(write_csv, tmp_path):
    path = write_csv("in.csv", "id,name\n1,a\n2,b\n")
    target = tmp_path / "out.jsonl"
    pipe = Pipe(CSVInputAdapter(path), JSONOutputAdapter(str(target)))
    first = pipe.run()
    second = pipe.run()
    assert first is not second
    assert_completed(first, read=2, written=2, errors=0)
    assert_completed(second, read=2, written=2, errors=0)
    assert count_lines(target) == 2


def test_a_failing_teardown_fails_the_run_and_publishes_nothing(tmp_path):
    class LeakyTeardown(Transform):
        def __call__(self, records):
            return records

        def teardown(self):
            raise RuntimeError("could not flush the cache")

    recorder = Recorder()
    target = tmp_path / "out.jsonl"
    pipe = Pipe(
        PyGeneratorInputAdapter([{"n": 1}]),
        JSONOutputAdapter(str(target)),
        post_validation=[recorder, LeakyTeardown()],
    )
    with pytest.raises(PipelineError, match="could not flush the cache"):
        pipe.run()
    assert pipe.report.status == PipeStatus.FAILED and pipe.report.is_finished
    assert_counts_add_up(pipe.report)
    assert recorder.calls[-1] == "teardown"
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_a_failing_teardown_after_a_failed_run_keeps_the_runs_error(tmp_path):
    class LeakyTeardown(Transform):
        def teardown(self):
            raise RuntimeError("teardown trouble")

        def __call__(self, records):
            return records

    pipe = Pipe(
        CSVInputAdapter(str(tmp_path / "missing.csv")),
        MemoryOutputAdapter(),
        post_validation=[LeakyTeardown()],
    )
    with pytest.raises(PipelineError, match="not found"):
        pipe.run()
    assert pipe.report.status == PipeStatus.FAILED
    assert_counts_add_up(pipe.report)


def test_pipe_signature():
    import inspect

    parameters = inspect.signature(Pipe).parameters
    assert list(parameters) == [
        "input_adapter",
        "output_adapter",
        "error_output_adapter",
        "schema_model",
        "pre_validation",
        "post_validation",
        "executor",
    ]
    assert all(parameters[name].default is None for name in list(parameters)[2:])
    for method in ("run", "start", "wait", "shutdown", "__enter__", "__exit__"):
        assert callable(getattr(Pipe, method))
    assert "timeout" in inspect.signature(Pipe.wait).parameters
    assert "timeout" in inspect.signature(Pipe.shutdown).parameters
