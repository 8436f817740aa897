"""ZooPipe's spellings on the file adapters: `fieldnames=` on the CSV adapters, `indent=` on
JSON array outputs, and a CSV error output that writes the columns it is given."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from pydantic import BaseModel

from zoopipe_core import (
    CSVInputAdapter,
    CSVOutputAdapter,
    JSONOutputAdapter,
    MemoryOutputAdapter,
    Pipe,
    PyGeneratorInputAdapter,
)


class Row(BaseModel):
    id: int
    name: str


@pytest.fixture
def users_csv(tmp_path: Path) -> str:
    path = tmp_path / "in.csv"
    path.write_text("id,name,city\n1,ada,Paris\nx,bob,Rome\n3,cy,Oslo\n")
    return str(path)


# ----------------------------------------------------------------------------- fieldnames=


def test_fieldnames_names_the_columns_of_a_csv_without_header(tmp_path: Path) -> None:
    path = tmp_path / "raw.csv"
    path.write_text("1,ada\n2,bob\n")
    out = MemoryOutputAdapter()
    Pipe(CSVInputAdapter(str(path), has_header=False, fieldnames=["id", "name"]), out).run()
    assert out.records == [{"id": "1", "name": "ada"}, {"id": "2", "name": "bob"}]


def test_fieldnames_is_field_names_on_input_and_output(tmp_path: Path, users_csv: str) -> None:
    assert CSVInputAdapter(users_csv, fieldnames=["a", "b", "c"]).field_names == ["a", "b", "c"]
    target = tmp_path / "out.csv"
    records = [{"b": 2, "a": 1}, {"a": 3, "b": 4}]
    Pipe(PyGeneratorInputAdapter(records), CSVOutputAdapter(str(target), fieldnames=["a", "b"])).run()
    assert target.read_text() == "a,b\n1,2\n3,4\n"


def test_fieldnames_and_field_names_together_are_an_error(users_csv: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"field_names=... or fieldnames=..."):
        CSVInputAdapter(users_csv, field_names=["a"], fieldnames=["a"])
    with pytest.raises(ValueError, match="not both"):
        CSVOutputAdapter(str(tmp_path / "o.csv"), field_names=["a"], fieldnames=["b"])
    with pytest.raises(TypeError, match="list of column names"):
        CSVOutputAdapter(str(tmp_path / "o.csv"), fieldnames="ab")


# ----------------------------------------------------------------------------- indent=


def _records() -> list[dict]:
    return [
        {"id": i, "name": f"n{i}", "tags": ["a", {"k": None}], "empty": {}, "s": 'q"},[\\'}
        for i in range(2500)
    ]


@pytest.mark.parametrize("indent", [0, 2, 4])
def test_indent_writes_valid_json_equal_to_the_unindented_output(tmp_path: Path, indent: int) -> None:
    plain, pretty = tmp_path / "plain.json", tmp_path / "pretty.json"
    Pipe(PyGeneratorInputAdapter(_records()), JSONOutputAdapter(str(plain))).run()
    Pipe(
        PyGeneratorInputAdapter(_records()), JSONOutputAdapter(str(pretty), format="array", indent=indent)
    ).run()
    assert json.loads(pretty.read_text()) == json.loads(plain.read_text()) == _records()
    # The layout of Python's json.dumps(indent=...), batch boundaries included.
    expected = json.dumps(
        json.loads(plain.read_text()), indent=indent, ensure_ascii=False, separators=(",", ": ")
    )
    assert pretty.read_text() == expected + "\n"


def test_indent_of_an_empty_array(tmp_path: Path) -> None:
    target = tmp_path / "none.json"
    Pipe(PyGeneratorInputAdapter([]), JSONOutputAdapter(str(target), indent=2)).run()
    assert json.loads(target.read_text()) == []


def test_indent_on_json_lines_is_an_error_that_says_why(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"needs format=\"array\": JSON Lines holds one record per line"):
        JSONOutputAdapter(str(tmp_path / "o.jsonl"), indent=2)
    with pytest.raises(ValueError, match="number of spaces"):
        JSONOutputAdapter(str(tmp_path / "o.json"), indent=-1)


# ----------------------------------------------------------------------------- CSV error output


def test_csv_error_output_writes_the_columns_it_is_given(tmp_path: Path, users_csv: str) -> None:
    errors = tmp_path / "errors.csv"
    report = Pipe(
        CSVInputAdapter(users_csv),
        JSONOutputAdapter(str(tmp_path / "o.jsonl")),
        error_output_adapter=CSVOutputAdapter(
            str(errors), fieldnames=["line", "stage", "errors", "id", "name", "nope"]
        ),
        schema_model=Row,
    ).run()
    assert (report.success_count, report.error_count) == (2, 1)
    rows = list(csv.reader(errors.open()))
    assert rows[0] == ["line", "stage", "errors", "id", "name", "nope"]
    assert rows[1][:2] == ["3", "validation"] and "id" in json.loads(rows[1][2])[0]
    assert rows[1][3:] == ["x", "bob", ""]
    assert len(rows) == 2


def test_csv_error_output_without_columns_writes_every_error_field(tmp_path: Path, users_csv: str) -> None:
    errors = tmp_path / "errors.csv"
    Pipe(
        CSVInputAdapter(users_csv),
        JSONOutputAdapter(str(tmp_path / "o.jsonl")),
        error_output_adapter=CSVOutputAdapter(str(errors)),
        schema_model=Row,
    ).run()
    assert next(csv.reader(errors.open())) == ["source", "line", "stage", "errors", "record"]
