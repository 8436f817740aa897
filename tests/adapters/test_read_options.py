"""Reader options of CSV and JSON Lines inputs: columns, skip_rows and limit, and what a schema
model reads."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import assert_completed
from pydantic import BaseModel, ConfigDict, Field

from zoopipe_core import CSVInputAdapter, JSONInputAdapter, MemoryOutputAdapter, Pipe, PipelineError


@pytest.fixture
def users_csv(tmp_path: Path) -> Path:
    path = tmp_path / "users.csv"
    path.write_text("id,name,email,age\n1,Ada,a@x,36\n2,Bob,b@x,41\n3,Cy,c@x,x\n4,Di,d@x,29\n5,Ed,e@x,50\n")
    return path


def run(adapter, **kwargs):
    out, errors = MemoryOutputAdapter(), MemoryOutputAdapter()
    report = Pipe(adapter, out, error_output_adapter=errors, **kwargs).run()
    return report, out.records, errors.records


def test_columns_reads_only_those_in_that_order(users_csv: Path) -> None:
    report, records, _ = run(CSVInputAdapter(users_csv, columns=["name", "id"]))
    assert_completed(report, read=5, written=5)
    assert records[0] == {"name": "Ada", "id": "1"}
    assert list(records[0]) == ["name", "id"]


def test_columns_still_checks_the_shape_of_every_row(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("a,b,c\n1,2,3\n4,5\n6,7,8\n")
    report, records, errors = run(CSVInputAdapter(path, columns=["a"]))
    assert_completed(report, read=3, written=2, errors=1)
    assert records == [{"a": "1"}, {"a": "6"}]
    assert errors[0]["line"] == 3 and "expected 3 fields, found 2" in errors[0]["errors"][0]


def test_a_missing_column_is_an_error_before_any_output(users_csv: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    from zoopipe_core import JSONOutputAdapter

    with pytest.raises(PipelineError) as info:
        Pipe(CSVInputAdapter(users_csv, columns=["name", "phone"]), JSONOutputAdapter(target)).run()
    message = str(info.value)
    assert "phone" in message and str(users_csv) in message and "columns" in message
    assert not target.exists()


def test_the_schema_reads_only_its_columns_and_aliases(users_csv: Path) -> None:
    class User(BaseModel):
        user_id: int = Field(alias="id")
        name: str

    report, records, _errors = run(CSVInputAdapter(users_csv), schema_model=User)
    assert_completed(report, read=5, written=5)
    assert records[0] == {"user_id": 1, "name": "Ada"}


def test_a_schema_field_missing_from_the_header_is_left_to_validation(users_csv: Path) -> None:
    class WithDefault(BaseModel):
        name: str
        country: str = "NL"

    report, records, _ = run(CSVInputAdapter(users_csv), schema_model=WithDefault)
    assert_completed(report, read=5, written=5)
    assert records[0] == {"name": "Ada", "country": "NL"}

    class Required(BaseModel):
        name: str
        country: str

    report, _, errors = run(CSVInputAdapter(users_csv), schema_model=Required)
    assert_completed(report, read=5, written=0, errors=5)
    assert "country" in str(errors[0]["errors"])


def test_pre_validation_transforms_see_every_column(users_csv: Path) -> None:
    class Name(BaseModel):
        name: str

    def greet(records):
        return [{**r, "name": f"{r['name']} <{r['email']}>"} for r in records]

    report, records, _ = run(CSVInputAdapter(users_csv), schema_model=Name, pre_validation=[greet])
    assert_completed(report, read=5, written=5)
    assert records[0] == {"name": "Ada <a@x>"}


def test_extra_allow_models_get_every_column(users_csv: Path) -> None:
    class Loose(BaseModel):
        model_config = ConfigDict(extra="allow")
        id: int

    _, records, _ = run(CSVInputAdapter(users_csv), schema_model=Loose)
    assert records[0] == {"id": 1, "name": "Ada", "email": "a@x", "age": "36"}


def test_skip_rows_and_limit_count_records_not_lines(tmp_path: Path) -> None:
    path = tmp_path / "multi.csv"
    path.write_text('a,b\n1,"x\ny"\n2,z\n3\n4,w\n5,v\n')
    report, records, errors = run(CSVInputAdapter(path, skip_rows=1, limit=3))
    assert_completed(report, read=3, written=2, errors=1)
    assert records == [{"a": "2", "b": "z"}, {"a": "4", "b": "w"}]
    assert errors[0]["line"] == 5
    report, records, _ = run(CSVInputAdapter(path, skip_rows=10))
    assert_completed(report, read=0)
    report, records, _ = run(CSVInputAdapter(path, limit=0))
    assert_completed(report, read=0)


def test_limit_spans_batches(users_csv: Path) -> None:
    from zoopipe_core import SingleThreadExecutor

    _report, records, _errors = run(
        CSVInputAdapter(users_csv, skip_rows=1, limit=3), executor=SingleThreadExecutor(batch_size=2)
    )
    assert [r["id"] for r in records] == ["2", "3", "4"]


def test_jsonl_columns_skip_and_limit(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"a": 1, "b": 2}\n\nnot json\n{"a": 3}\n{"b": 4, "a": 5}\n')
    report, records, errors = run(JSONInputAdapter(path, columns=["a"], skip_rows=1, limit=3))
    assert_completed(report, read=3, written=2, errors=1)
    assert records == [{"a": 3}, {"a": 5}]
    assert errors[0]["line"] == 3


def test_jsonl_schema_model_drops_other_keys(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"a": "1", "secret": "s"}\n')

    class A(BaseModel):
        a: int

    _, records, _ = run(JSONInputAdapter(path), schema_model=A)
    assert records == [{"a": 1}]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"skip_rows": -1}, "skip_rows"),
        ({"limit": -2}, "limit"),
        ({"columns": "a"}, "list of names"),
        ({"line_offset": -1}, "line_offset"),
    ],
)
def test_bad_options_are_explained(users_csv: Path, kwargs, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        CSVInputAdapter(users_csv, **kwargs)
    with pytest.raises((ValueError, TypeError), match=message):
        JSONInputAdapter(users_csv, **kwargs)
