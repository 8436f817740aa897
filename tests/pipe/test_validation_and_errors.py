"""Validation with a pydantic v2 model, and error records: where they come from and why."""

from __future__ import annotations

import datetime
import decimal
import math
import uuid
from typing import ClassVar

from conftest import assert_completed, count_lines, read_jsonl
from pydantic import BaseModel, Field

from zoopipe_core import (
    CSVInputAdapter,
    CSVOutputAdapter,
    JSONInputAdapter,
    JSONOutputAdapter,
    MemoryOutputAdapter,
    Pipe,
    PyGeneratorInputAdapter,
    SingleThreadExecutor,
    Transform,
)

ERROR_FIELDS = ["source", "line", "stage", "errors", "record"]


class User(BaseModel):
    id: int
    name: str
    age: int
    active: bool = True
    tags: list[str] = Field(default_factory=list)


class Aliased(BaseModel):
    user_id: int = Field(alias="userId")
    full_name: str = Field(alias="Full Name")


# -- valid records are written as the model's data ------------------------------------------


def test_valid_records_are_written_coerced_with_defaults(write_csv, tmp_path):
    path = write_csv("users.csv", "id,name,age\n1,Ada,30\n2,Bob,041\n")
    target = tmp_path / "users.jsonl"
    report = Pipe(CSVInputAdapter(path), JSONOutputAdapter(str(target)), schema_model=User).run()
    assert_completed(report, read=2, written=2, errors=0)
    assert read_jsonl(target) == [
        {"id": 1, "name": "Ada", "age": 30, "active": True, "tags": []},
        {"id": 2, "name": "Bob", "age": 41, "active": True, "tags": []},
    ]


def test_valid_records_equal_model_dump_in_memory():
    rows = [{"id": "5", "name": "Cy", "age": "22", "active": "false"}]
    out = MemoryOutputAdapter()
    report = Pipe(PyGeneratorInputAdapter(rows), out, schema_model=User).run()
    assert_completed(report, read=1, written=1, errors=0)
    assert out.records == [User.model_validate(rows[0]).model_dump()]
    assert out.records[0]["age"] == 22 and out.records[0]["active"] is False


def test_fields_are_read_by_alias_and_written_by_name(write_csv, tmp_path):
    path = write_csv("aliased.csv", "userId,Full Name\n9,Ada Lovelace\n")
    target = tmp_path / "out.jsonl"
    report = Pipe(CSVInputAdapter(path), JSONOutputAdapter(str(target)), schema_model=Aliased).run()
    assert_completed(report, read=1, written=1, errors=0)
    assert read_jsonl(target) == [{"user_id": 9, "full_name": "Ada Lovelace"}]


def test_unknown_columns_are_dropped_by_the_model(write_csv):
    path = write_csv("extra.csv", "id,name,age,secret\n1,Ada,30,hunter2\n")
    out = MemoryOutputAdapter()
    report = Pipe(CSVInputAdapter(path), out, schema_model=User).run()
    assert_completed(report, read=1, written=1, errors=0)
    assert "secret" not in out.records[0]


# -- invalid records go to the error output, never to the main output -----------------------


def test_invalid_records_go_to_the_error_output_with_line_and_reason(write_csv, tmp_path):
    path = write_csv("users.csv", "id,name,age\n1,Ada,30\nx,Bob,40\n3,Cy,old\n4,Di,50\n")
    target, error_target = tmp_path / "ok.jsonl", tmp_path / "errors.jsonl"
    report = Pipe(
        CSVInputAdapter(path),
        JSONOutputAdapter(str(target)),
        error_output_adapter=JSONOutputAdapter(str(error_target)),
        schema_model=User,
    ).run()
    assert_completed(report, read=4, written=2, errors=2)
    assert count_lines(target) == 2 and count_lines(error_target) == 2
    assert [r["id"] for r in read_jsonl(target)] == [1, 4]
    errors = read_jsonl(error_target)
    assert [list(e) for e in errors] == [ERROR_FIELDS, ERROR_FIELDS]
    assert [(e["source"], e["line"], e["stage"]) for e in errors] == [
        (path, 3, "validation"),
        (path, 4, "validation"),
    ]
    assert errors[0]["record"] == {"id": "x", "name": "Bob", "age": "40"}
    assert errors[1]["record"] == {"id": "3", "name": "Cy", "age": "old"}
    assert len(errors[0]["errors"]) == 1 and errors[0]["errors"][0].startswith("id: ")
    assert "integer" in errors[0]["errors"][0]
    assert errors[1]["errors"][0].startswith("age: ")


def test_every_message_of_a_record_is_kept():
    errors = MemoryOutputAdapter()
    report = Pipe(
        PyGeneratorInputAdapter([{"id": "x", "age": "y"}]),
        MemoryOutputAdapter(),
        error_output_adapter=errors,
        schema_model=User,
    ).run()
    assert_completed(report, read=1, written=0, errors=1)
    messages = errors.records[0]["errors"]
    assert sorted(m.split(":")[0] for m in messages) == ["age", "id", "name"]
    assert any("Field required" in m for m in messages)


def test_mixed_batches_keep_every_record_exactly_once():
    rows = [{"id": str(i) if i % 7 else "bad", "name": f"n{i}", "age": i} for i in range(1000)]
    out, errors = MemoryOutputAdapter(), MemoryOutputAdapter()
    report = Pipe(
        PyGeneratorInputAdapter(rows),
        out,
        error_output_adapter=errors,
        schema_model=User,
        executor=SingleThreadExecutor(batch_size=100),
    ).run()
    bad = [i for i in range(1000) if i % 7 == 0]
    assert_completed(report, read=1000, written=1000 - len(bad), errors=len(bad))
    assert [r["id"] for r in out.records] == [i for i in range(1000) if i % 7]
    assert [e["line"] for e in errors.records] == [i + 1 for i in bad]
    assert all(e["record"] == rows[e["line"] - 1] for e in errors.records)


def test_a_record_failing_validation_never_reaches_the_main_output_unvalidated(write_csv, tmp_path):
    path = write_csv("users.csv", "id,name,age\n1,Ada,thirty\n")
    target = tmp_path / "ok.csv"
    report = Pipe(CSVInputAdapter(path), CSVOutputAdapter(str(target)), schema_model=User).run()
    assert_completed(report, read=1, written=0, errors=1)
    assert "thirty" not in target.read_text()
    assert report.error_samples[0]["record"]["age"] == "thirty"


# -- transforms that raise -------------------------------------------------------------------


def test_a_raising_transform_sends_its_batch_to_the_errors_and_the_run_goes_on():
    def explode_on_seven(records):
        if any(r["n"] == 7 for r in records):
            raise ValueError("seven is not allowed")
        return [{**r, "double": r["n"] * 2} for r in records]

    out, errors = MemoryOutputAdapter(), MemoryOutputAdapter()
    report = Pipe(
        PyGeneratorInputAdapter({"n": i} for i in range(20)),
        out,
        error_output_adapter=errors,
        post_validation=[explode_on_seven],
        executor=SingleThreadExecutor(batch_size=3),
    ).run()
    # Batches of 3: the batch holding 7 is records 6, 7, 8 (lines 7, 8, 9).
    assert_completed(report, read=20, written=17, errors=3)
    assert [r["n"] for r in out.records] == [n for n in range(20) if n not in (6, 7, 8)]
    assert all(r["double"] == 2 * r["n"] for r in out.records)
    assert [e["line"] for e in errors.records] == [7, 8, 9]
    assert [e["record"] for e in errors.records] == [{"n": 6}, {"n": 7}, {"n": 8}]
    for e in errors.records:
        assert e["stage"] == "transform"
        assert e["source"] == "generator"
        text = "\n".join(e["errors"])
        assert "ValueError" in text and "seven is not allowed" in text
        assert "Traceback (most recent call last)" in text and "explode_on_seven" in text


def test_a_raising_pre_validation_transform_reports_the_original_records():
    def fail(records):
        raise KeyError("missing lookup")

    errors = MemoryOutputAdapter()
    report = Pipe(
        PyGeneratorInputAdapter([{"id": "1", "name": "a", "age": "3"}]),
        MemoryOutputAdapter(),
        error_output_adapter=errors,
        schema_model=User,
        pre_validation=[fail],
    ).run()
    assert_completed(report, read=1, written=0, errors=1)
    (error,) = errors.records
    assert error["stage"] == "transform" and error["record"] == {"id": "1", "name": "a", "age": "3"}
    assert "KeyError" in error["errors"][0] and "missing lookup" in error["errors"][0]


def test_a_raising_post_validation_transform_keeps_validation_failures_apart():
    def fail(records):
        raise RuntimeError("downstream down")

    rows = [{"id": "1", "name": "a", "age": "3"}, {"id": "x", "name": "b", "age": "4"}]
    errors = MemoryOutputAdapter()
    report = Pipe(
        PyGeneratorInputAdapter(rows),
        MemoryOutputAdapter(),
        error_output_adapter=errors,
        schema_model=User,
        post_validation=[fail],
    ).run()
    assert_completed(report, read=2, written=0, errors=2)
    assert [(e["line"], e["stage"]) for e in errors.records] == [(1, "transform"), (2, "validation")]
    assert errors.records[0]["record"] == rows[0]


def test_a_transform_object_that_raises_is_still_torn_down():
    class Flaky(Transform):
        calls: ClassVar[list[str]] = []

        def setup(self):
            self.calls.append("setup")

        def __call__(self, records):
            raise ValueError("flaky")

        def teardown(self):
            self.calls.append("teardown")

    flaky = Flaky()
    report = Pipe(PyGeneratorInputAdapter([{"n": 1}]), MemoryOutputAdapter(), post_validation=[flaky]).run()
    assert_completed(report, read=1, written=0, errors=1)
    assert flaky.calls == ["setup", "teardown"]


def test_a_transform_returning_the_wrong_number_of_records_fails_its_batch():
    def drop_half(records):
        return records[: len(records) // 2]

    errors = MemoryOutputAdapter()
    report = Pipe(
        PyGeneratorInputAdapter({"n": i} for i in range(4)),
        MemoryOutputAdapter(),
        error_output_adapter=errors,
        post_validation=[drop_half],
    ).run()
    assert_completed(report, read=4, written=0, errors=4)
    assert "returned 2 records for a batch of 4" in errors.records[0]["errors"][0]


def test_jsonl_input_errors_carry_the_file_line(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": 1, "name": "a", "age": 2}\n{"id": "x", "name": "b", "age": 2}\nnot json\n')
    errors = MemoryOutputAdapter()
    report = Pipe(
        JSONInputAdapter(str(source)), MemoryOutputAdapter(), error_output_adapter=errors, schema_model=User
    ).run()
    assert_completed(report, read=3, written=1, errors=2)
    assert [(e["source"], e["line"], e["stage"]) for e in errors.records] == [
        (str(source), 2, "validation"),
        (str(source), 3, "parse"),
    ]
    assert errors.records[1]["record"] == "not json"


# -- serialisation ---------------------------------------------------------------------------


def test_nan_written_to_json_is_an_error_record_not_a_null(tmp_path):
    def score(records):
        return [{**r, "score": math.nan if r["n"] == 1 else r["n"] / 2} for r in records]

    target, error_target = tmp_path / "out.jsonl", tmp_path / "errors.jsonl"
    report = Pipe(
        PyGeneratorInputAdapter({"n": i} for i in range(3)),
        JSONOutputAdapter(str(target)),
        error_output_adapter=JSONOutputAdapter(str(error_target)),
        post_validation=[score],
    ).run()
    assert_completed(report, read=3, written=2, errors=1)
    assert read_jsonl(target) == [{"n": 0, "score": 0.0}, {"n": 2, "score": 1.0}]
    assert "null" not in target.read_text() and "NaN" not in target.read_text()
    (error,) = read_jsonl(error_target)
    assert error["stage"] == "serialize" and error["line"] == 2
    assert "NaN" in error["errors"][0]
    # The original record, as read, not the transform's output.
    assert error["record"] == {"n": 1}


def test_a_serialize_error_carries_the_original_csv_record(write_csv, tmp_path):
    class Reading(BaseModel):
        id: int
        value: float

    path = write_csv("readings.csv", "id,value\n1,2.0\n2,nan\n")
    errors = MemoryOutputAdapter()
    report = Pipe(
        CSVInputAdapter(path),
        JSONOutputAdapter(str(tmp_path / "out.jsonl")),
        error_output_adapter=errors,
        schema_model=Reading,
    ).run()
    assert_completed(report, read=2, written=1, errors=1)
    (error,) = errors.records
    assert (error["source"], error["line"], error["stage"]) == (path, 3, "serialize")
    assert error["record"] == {"id": "2", "value": "nan"}


def test_nan_in_the_input_itself_reaches_a_json_error_output_as_text(tmp_path):
    error_target = tmp_path / "errors.jsonl"
    report = Pipe(
        PyGeneratorInputAdapter([{"x": math.nan}]),
        JSONOutputAdapter(str(tmp_path / "out.jsonl")),
        error_output_adapter=JSONOutputAdapter(str(error_target)),
    ).run()
    assert_completed(report, read=1, written=0, errors=1)
    (error,) = read_jsonl(error_target)
    # JSON cannot hold NaN: the error output keeps it as text rather than losing the error.
    assert error["stage"] == "serialize" and error["record"] == {"x": "NaN"}


def test_infinity_refused_by_json_reaches_a_csv_error_output(tmp_path):
    target, error_target = tmp_path / "out.jsonl", tmp_path / "errors.csv"
    rows = [{"n": 0, "x": 1.5}, {"n": 1, "x": -math.inf}]
    report = Pipe(
        PyGeneratorInputAdapter(rows),
        JSONOutputAdapter(str(target)),
        error_output_adapter=CSVOutputAdapter(str(error_target)),
    ).run()
    assert_completed(report, read=2, written=1, errors=1)
    assert read_jsonl(target) == [{"n": 0, "x": 1.5}]
    lines = error_target.read_text().splitlines()
    assert len(lines) == 2 and lines[0] == ",".join(ERROR_FIELDS)
    assert lines[1].startswith("generator,2,serialize,") and "-inf" in lines[1]


def test_a_value_of_an_unsupported_type_is_an_error_record(tmp_path):
    def attach(records):
        return [{**r, "obj": object()} if r["n"] == 0 else r for r in records]

    target = tmp_path / "out.jsonl"
    errors = MemoryOutputAdapter()
    report = Pipe(
        PyGeneratorInputAdapter({"n": i} for i in range(2)),
        JSONOutputAdapter(str(target)),
        error_output_adapter=errors,
        post_validation=[attach],
    ).run()
    assert_completed(report, read=2, written=1, errors=1)
    assert read_jsonl(target) == [{"n": 1}]
    (error,) = errors.records
    assert error["stage"] == "serialize" and error["line"] == 1 and error["record"] == {"n": 0}
    assert "object" in error["errors"][0] and "obj" in error["errors"][0]


def test_dates_decimals_and_uuids_are_written_as_text(tmp_path):
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    row = {
        "day": datetime.date(2024, 2, 29),
        "at": datetime.datetime(2024, 2, 29, 13, 45, 1, tzinfo=datetime.timezone.utc),
        "time": datetime.time(7, 5),
        "price": decimal.Decimal("12.50"),
        "id": ident,
    }
    expected = {
        "day": "2024-02-29",
        "at": "2024-02-29T13:45:01+00:00",
        "time": "07:05:00",
        "price": "12.50",
        "id": str(ident),
    }
    json_target, csv_target = tmp_path / "out.jsonl", tmp_path / "out.csv"
    report = Pipe(PyGeneratorInputAdapter([dict(row)]), JSONOutputAdapter(str(json_target))).run()
    assert_completed(report, read=1, written=1, errors=0)
    assert read_jsonl(json_target) == [expected]
    report = Pipe(PyGeneratorInputAdapter([dict(row)]), CSVOutputAdapter(str(csv_target))).run()
    assert_completed(report, read=1, written=1, errors=0)
    assert csv_target.read_text().splitlines() == [",".join(expected), ",".join(expected.values())]


def test_validated_dates_reach_json_as_iso_text(write_csv, tmp_path):
    class Event(BaseModel):
        day: datetime.date
        amount: decimal.Decimal

    path = write_csv("events.csv", "day,amount\n2024-01-02,3.10\n")
    target = tmp_path / "events.jsonl"
    report = Pipe(CSVInputAdapter(path), JSONOutputAdapter(str(target)), schema_model=Event).run()
    assert_completed(report, read=1, written=1, errors=0)
    assert read_jsonl(target) == [{"day": "2024-01-02", "amount": "3.10"}]


def test_every_type_a_model_dumps_is_written_in_its_json_form(tmp_path):
    import ipaddress

    from pydantic import HttpUrl

    class Rich(BaseModel):
        url: HttpUrl
        tags: set[str]
        wait: datetime.timedelta
        ip: ipaddress.IPv4Address
        blob: bytes

    row = {"url": "https://example.org/a", "tags": ["x"], "wait": "PT1H", "ip": "10.0.0.1", "blob": "hi"}
    target = tmp_path / "out.jsonl"
    report = Pipe(PyGeneratorInputAdapter([row]), JSONOutputAdapter(str(target)), schema_model=Rich).run()
    assert_completed(report, read=1, written=1, errors=0)
    # pydantic's JSON form, except bytes: always base64 in our JSON (see test_bytes_in_json.py).
    assert read_jsonl(target) == [{**Rich.model_validate(row).model_dump(mode="json"), "blob": "aGk="}]
