"""A validator that raises something pydantic does not turn into a ValidationError (TypeError,
KeyError, ...) fails its own record, at stage "validation", and the run goes on (issue 14, item 8)."""

from __future__ import annotations

import pytest
from conftest import assert_completed, read_jsonl
from pydantic import BaseModel, field_validator, model_validator

from zoopipe_core import (
    CSVInputAdapter,
    JSONOutputAdapter,
    MemoryOutputAdapter,
    Pipe,
    PyGeneratorInputAdapter,
    SingleThreadExecutor,
)
from zoopipe_core.pipe.runner import PipeCancelled
from zoopipe_core.pipe.validation import BatchValidator


class FieldTypeError(BaseModel):
    id: int
    name: str

    @field_validator("name")
    @classmethod
    def no_bad_names(cls, value: str) -> str:
        if value == "bad":
            raise TypeError(f"names like {value!r} are not allowed")
        return value


class FieldKeyError(BaseModel):
    id: int
    country: str

    @field_validator("country")
    @classmethod
    def known_country(cls, value: str) -> str:
        return {"fr": "France", "no": "Norway"}[value]


class WholeModelRaises(BaseModel):
    id: int
    low: int
    high: int

    @model_validator(mode="after")
    def ordered(self) -> WholeModelRaises:
        if self.low > self.high:
            raise RuntimeError(f"low {self.low} above high {self.high}")
        return self


def _run(model, rows, batch_size=1000):
    out, errors = MemoryOutputAdapter(), MemoryOutputAdapter()
    report = Pipe(
        PyGeneratorInputAdapter(rows),
        out,
        error_output_adapter=errors,
        schema_model=model,
        executor=SingleThreadExecutor(batch_size=batch_size),
    ).run()
    return report, out.records, errors.records


def test_a_field_validator_raising_type_error_fails_only_its_record():
    rows = [{"id": "1", "name": "ada"}, {"id": "2", "name": "bad"}, {"id": "3", "name": "bob"}]
    report, out, errors = _run(FieldTypeError, rows)
    assert_completed(report, read=3, written=2, errors=1)
    assert out == [{"id": 1, "name": "ada"}, {"id": 3, "name": "bob"}]
    (error,) = errors
    assert error["stage"] == "validation" and error["line"] == 2
    assert error["record"] == {"id": "2", "name": "bad"}
    (message,) = error["errors"]
    assert message.startswith("validation raised TypeError: names like 'bad' are not allowed")
    assert "no_bad_names" in message  # where it was raised


def test_several_rows_raising_key_error_in_one_batch():
    countries = ["fr", "xx", "no", "yy", "fr", "zz"]
    rows = [{"id": str(i), "country": c} for i, c in enumerate(countries)]
    report, out, errors = _run(FieldKeyError, rows)
    assert_completed(report, read=6, written=3, errors=3)
    assert [r["country"] for r in out] == ["France", "Norway", "France"]
    assert [e["line"] for e in errors] == [2, 4, 6]
    assert [e["record"]["country"] for e in errors] == ["xx", "yy", "zz"]
    for e, key in zip(errors, ["xx", "yy", "zz"], strict=False):
        assert e["stage"] == "validation"
        assert e["errors"][0].startswith(f"validation raised KeyError: '{key}'")


def test_a_raising_model_validator_beside_ordinary_validation_errors():
    rows = [
        {"id": "1", "low": "1", "high": "2"},
        {"id": "2", "low": "5", "high": "1"},  # the model validator raises RuntimeError
        {"id": "x", "low": "1", "high": "2"},  # an ordinary validation error
        {"id": "4", "low": "3", "high": "3"},
    ]
    report, out, errors = _run(WholeModelRaises, rows)
    assert_completed(report, read=4, written=2, errors=2)
    assert [r["id"] for r in out] == [1, 4]
    assert [(e["line"], e["stage"]) for e in errors] == [(2, "validation"), (3, "validation")]
    assert errors[0]["errors"][0].startswith("validation raised RuntimeError: low 5 above high 1")
    assert errors[1]["errors"][0].startswith("id: ")


def test_raising_validators_over_many_batches_to_a_file(tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("id,name\n" + "".join(f"{i},{'bad' if i % 7 == 0 else 'n'}\n" for i in range(1, 101)))
    report = Pipe(
        CSVInputAdapter(str(source)),
        JSONOutputAdapter(str(tmp_path / "out.jsonl")),
        error_output_adapter=JSONOutputAdapter(str(tmp_path / "errors.jsonl")),
        schema_model=FieldTypeError,
        executor=SingleThreadExecutor(batch_size=16),
    ).run()
    bad = [i for i in range(1, 101) if i % 7 == 0]
    assert_completed(report, read=100, written=100 - len(bad), errors=len(bad))
    assert [e["record"]["id"] for e in read_jsonl(tmp_path / "errors.jsonl")] == [str(i) for i in bad]
    assert len(read_jsonl(tmp_path / "out.jsonl")) == 100 - len(bad)


def test_cancellation_is_not_swallowed_as_a_record_failure():
    class Cancelling(BaseModel):
        id: int

        @field_validator("id")
        @classmethod
        def stop(cls, value: int) -> int:
            raise PipeCancelled()

    with pytest.raises(PipeCancelled):
        BatchValidator(Cancelling).validate([{"id": "1"}, {"id": "2"}])


def test_a_raising_field_serializer_fails_only_its_record():
    from pydantic import field_serializer

    class Priced(BaseModel):
        id: int
        price: int

        @field_serializer("price")
        def cents(self, price: int) -> str:
            if price < 0:
                raise KeyError(f"no currency for {price}")
            return f"{price / 100:.2f}"

    rows = [{"id": "1", "price": "150"}, {"id": "2", "price": "-1"}, {"id": "3", "price": "99"}]
    report, out, errors = _run(Priced, rows)
    assert_completed(report, read=3, written=2, errors=1)
    assert out == [{"id": 1, "price": "1.50"}, {"id": 3, "price": "0.99"}]
    (error,) = errors
    assert (error["stage"], error["line"], error["record"]) == ("serialize", 2, rows[1])
    assert error["errors"][0].startswith("model_dump raised PydanticSerializationError: ")
    assert "no currency for -1" in error["errors"][0]
