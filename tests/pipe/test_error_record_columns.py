"""With a schema model, the input still reads every column: a rejected record's error record
carries the whole row as read, a model with extra="forbid" sees the extra columns, and a model
validator that runs first sees every key (issue 14, item 4). Valid records reach the model with
only the keys it reads when it ignores the others."""

from __future__ import annotations

import json

import pyarrow
import pyarrow.parquet
import pytest
from conftest import assert_completed, read_jsonl
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from zoopipe_core import (
    CSVInputAdapter,
    JSONInputAdapter,
    JSONOutputAdapter,
    MemoryOutputAdapter,
    ParquetInputAdapter,
    Pipe,
    SingleThreadExecutor,
)
from zoopipe_core.pipe.validation import input_keys

HEADER = ["id", "name", "city", "note"]
ROWS = [["1", "ada", "Oslo", "first"], ["x", "bob", "Rome", "bad id"], ["3", "cy", "Lima", "third"]]


class User(BaseModel):
    id: int
    name: str


class StrictUser(User):
    model_config = ConfigDict(extra="forbid")


class Unrelated(BaseModel):
    sku: int
    price: float


def _write_input(tmp_path, kind: str) -> str:
    if kind == "csv":
        path = tmp_path / "in.csv"
        path.write_text("\n".join(",".join(r) for r in [HEADER, *ROWS]) + "\n")
        return str(path)
    if kind == "jsonl":
        path = tmp_path / "in.jsonl"
        path.write_text("".join(json.dumps(dict(zip(HEADER, r, strict=False))) + "\n" for r in ROWS))
        return str(path)
    path = tmp_path / "in.parquet"
    pyarrow.parquet.write_table(
        pyarrow.Table.from_pylist([dict(zip(HEADER, r, strict=False)) for r in ROWS]), path
    )
    return str(path)


INPUTS = {"csv": CSVInputAdapter, "jsonl": JSONInputAdapter, "parquet": ParquetInputAdapter}


def _run(tmp_path, kind, model, **pipe_options):
    errors = tmp_path / "errors.jsonl"
    out = MemoryOutputAdapter()
    report = Pipe(
        INPUTS[kind](_write_input(tmp_path, kind)),
        out,
        error_output_adapter=JSONOutputAdapter(str(errors)),
        schema_model=model,
        executor=SingleThreadExecutor(batch_size=2),
        **pipe_options,
    ).run()
    return report, out.records, read_jsonl(errors)


def _full_row(i: int) -> dict:
    return dict(zip(HEADER, ROWS[i], strict=False))


@pytest.mark.parametrize("kind", INPUTS)
def test_a_rejected_row_keeps_every_column_in_its_error_record(tmp_path, kind):
    report, out, errors = _run(tmp_path, kind, User)
    assert_completed(report, read=3, written=2, errors=1)
    assert out == [{"id": 1, "name": "ada"}, {"id": 3, "name": "cy"}]
    (error,) = errors
    assert error["stage"] == "validation" and error["line"] == (3 if kind == "csv" else 2)
    assert error["record"] == _full_row(1)


@pytest.mark.parametrize("kind", INPUTS)
def test_extra_forbid_sees_the_columns_the_model_does_not_name(tmp_path, kind):
    report, _out, errors = _run(tmp_path, kind, StrictUser)
    assert_completed(report, read=3, written=0, errors=3)
    for i, error in enumerate(errors):
        assert error["record"] == _full_row(i)
        text = "\n".join(error["errors"])
        assert (
            "city: Extra inputs are not permitted" in text and "note: Extra inputs are not permitted" in text
        )


@pytest.mark.parametrize("kind", INPUTS)
def test_a_model_that_matches_no_column_reports_whole_rows(tmp_path, kind):
    report, _out, errors = _run(tmp_path, kind, Unrelated)
    assert_completed(report, read=3, written=0, errors=3)
    assert [e["record"] for e in errors] == [_full_row(i) for i in range(3)]
    assert all("sku: Field required" in e["errors"] for e in errors)


def test_a_model_validator_running_first_sees_every_column(tmp_path):
    class Labelled(BaseModel):
        id: int
        label: str

        @model_validator(mode="before")
        @classmethod
        def make_label(cls, data: dict) -> dict:
            return {**data, "label": f"{data['name']}@{data['city']}"}

    report, out, _errors = _run(tmp_path, "csv", Labelled)
    assert_completed(report, read=3, written=2, errors=1)
    assert out == [{"id": 1, "label": "ada@Oslo"}, {"id": 3, "label": "cy@Lima"}]


def test_validation_aliases_are_read(tmp_path):
    class Aliased(BaseModel):
        ident: int = Field(validation_alias="id")
        who: str = Field(validation_alias=AliasChoices("nickname", "name"))

    report, out, _ = _run(tmp_path, "csv", Aliased)
    assert_completed(report, read=3, written=2, errors=1)
    assert out == [{"ident": 1, "who": "ada"}, {"ident": 3, "who": "cy"}]


def test_input_keys_only_when_the_model_ignores_the_rest():
    assert input_keys(User) == ["id", "name"]
    assert input_keys(StrictUser) is None

    class Keeps(User):
        model_config = ConfigDict(extra="allow")

    class Before(User):
        @model_validator(mode="wrap")
        @classmethod
        def wrap(cls, data, handler):
            return handler(data)

    assert input_keys(Keeps) is None and input_keys(Before) is None


def test_explicit_columns_still_limit_what_is_read(tmp_path):
    """`columns=` is the user's own projection: the error record holds those columns only."""
    path = _write_input(tmp_path, "csv")
    errors = MemoryOutputAdapter()
    report = Pipe(
        CSVInputAdapter(path, columns=["id", "name"]),
        MemoryOutputAdapter(),
        error_output_adapter=errors,
        schema_model=User,
    ).run()
    assert_completed(report, read=3, written=2, errors=1)
    assert errors.records[0]["record"] == {"id": "x", "name": "bob"}
