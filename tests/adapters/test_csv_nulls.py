"""Nulls in CSV (issue 14, item 2): an empty unquoted field is None where the model's field accepts
None, a quoted "" stays "", `null_values` names other markers, on every path (model, all-Rust,
shards), and a CSV written with nulls reads back to the same nulls."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from conftest import assert_completed
from pydantic import BaseModel

from zoopipe_core import (
    CSVInputAdapter,
    CSVOutputAdapter,
    JSONOutputAdapter,
    MemoryOutputAdapter,
    ParquetInputAdapter,
    ParquetOutputAdapter,
    Pipe,
    PipeManager,
    PyGeneratorInputAdapter,
)


class Row(BaseModel):
    id: int
    count: int | None
    score: float | None
    note: str | None
    name: str


RECORDS = [
    {"id": 1, "count": 3, "score": 1.5, "note": "x", "name": "Ada"},
    {"id": 2, "count": None, "score": None, "note": None, "name": ""},
    {"id": 3, "count": 0, "score": -0.25, "note": "", "name": 'say "hi", then\nleave'},
    {"id": 4, "count": None, "score": 2.0, "note": "NA", "name": "NA"},
]


def read_back(path: Path | str, model: type[BaseModel] = Row, **options: Any) -> list[dict[str, Any]]:
    out, errors = MemoryOutputAdapter(), MemoryOutputAdapter()
    report = Pipe(
        CSVInputAdapter(path, **options), out, error_output_adapter=errors, schema_model=model
    ).run()
    assert errors.records == [] and report.error_count == 0
    return out.records


def test_empty_unquoted_fields_are_none_where_the_model_accepts_none(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text('id,count,score,note,name\n1,,,,\n2,"","","",""\n3,7,0.5,a,b\n')
    out, errors = MemoryOutputAdapter(), MemoryOutputAdapter()

    class Loose(BaseModel):
        id: int
        count: int | None
        score: Any
        note: str | None
        name: str

    report = Pipe(CSVInputAdapter(path), out, error_output_adapter=errors, schema_model=Loose).run()
    assert_completed(report, read=3, written=2, errors=1)
    # A plain str field keeps "": an empty field is not a validation error there.
    assert out.records == [
        {"id": 1, "count": None, "score": None, "note": None, "name": ""},
        {"id": 3, "count": 7, "score": "0.5", "note": "a", "name": "b"},
    ]
    # A quoted "" is an empty string: not an integer.
    assert errors.records[0]["line"] == 3
    assert errors.records[0]["errors"] == [
        "count: Input should be a valid integer, unable to parse string as an integer"
    ]
    assert errors.records[0]["record"]["note"] == ""


def test_an_empty_field_still_fails_a_field_that_does_not_accept_none(tmp_path: Path) -> None:
    class IdName(BaseModel):
        id: int
        name: str

    path = tmp_path / "in.csv"
    path.write_text("id,name\n,Ada\n")
    errors = MemoryOutputAdapter()
    report = Pipe(
        CSVInputAdapter(path), MemoryOutputAdapter(), error_output_adapter=errors, schema_model=IdName
    ).run()
    assert_completed(report, read=1, written=0, errors=1)
    assert errors.records[0]["errors"] == [
        "id: Input should be a valid integer, unable to parse string as an integer"
    ]


def test_null_values_name_other_markers_unquoted_only(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text('id,count,score,note,name\n1,NA,\\N,"NA",NA\n2,\\N,NA,NA,"\\N"\n')
    assert read_back(path, null_values=["NA", "\\N"]) == [
        {"id": 1, "count": None, "score": None, "note": "NA", "name": "NA"},
        {"id": 2, "count": None, "score": None, "note": None, "name": "\\N"},
    ]
    with pytest.raises(TypeError, match="null_values must be a list of strings"):
        CSVInputAdapter(path, null_values="NA")


def test_without_a_model_nulls_are_real_nulls_on_the_all_rust_path(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text('a,b,c\n,"",NA\n"NA",x,\n')
    target = tmp_path / "out.jsonl"
    report = Pipe(CSVInputAdapter(source, null_values=["NA"]), JSONOutputAdapter(target)).run()
    assert_completed(report, read=2, written=2, errors=0)
    assert [json.loads(line) for line in target.read_text().splitlines()] == [
        {"a": None, "b": "", "c": None},
        {"a": "NA", "b": "x", "c": None},
    ]
    parquet = tmp_path / "out.parquet"
    Pipe(CSVInputAdapter(source, null_values=["NA"]), ParquetOutputAdapter(parquet)).run()
    assert pq.read_table(parquet).to_pylist() == [
        {"a": None, "b": "", "c": None},
        {"a": "NA", "b": "x", "c": None},
    ]
    # CSV to CSV keeps nulls and empty strings apart.
    csv_out = tmp_path / "out.csv"
    Pipe(CSVInputAdapter(source), CSVOutputAdapter(csv_out)).run()
    assert csv_out.read_text() == 'a,b,c\n,"",NA\nNA,x,\n'


def test_csv_written_with_nulls_reads_back_to_the_same_records(tmp_path: Path) -> None:
    written = tmp_path / "written.csv"
    report = Pipe(PyGeneratorInputAdapter(RECORDS), CSVOutputAdapter(written), schema_model=Row).run()
    assert_completed(report, read=4, written=4, errors=0)
    assert written.read_text().splitlines()[2] == '2,,,,""'
    assert read_back(written) == RECORDS
    # Through Parquet on the all-Rust path (no model, no transforms), then validated again.
    parquet = tmp_path / "nulls.parquet"
    assert_completed(
        Pipe(CSVInputAdapter(written), ParquetOutputAdapter(parquet)).run(), read=4, written=4, errors=0
    )
    assert pq.read_table(parquet).column("count").null_count == 2
    out = MemoryOutputAdapter()
    Pipe(ParquetInputAdapter(str(parquet)), out, schema_model=Row).run()
    assert out.records == RECORDS


def test_parallel_shards_read_nulls_the_same_way(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    lines = ["id,count,score,note,name"]
    expected = []
    for i in range(400):
        lines.append(
            f"{i},{'' if i % 3 else i},{'NA' if i % 5 == 0 else '0.5'},{'' if i % 2 else chr(34) * 2},"
        )
        expected.append(
            {
                "id": i,
                "count": None if i % 3 else i,
                "score": None if i % 5 == 0 else 0.5,
                "note": None if i % 2 else "",
                "name": "",
            }
        )
    source.write_text("\n".join(lines) + "\n")
    target = tmp_path / "out.jsonl"
    pipe = Pipe(CSVInputAdapter(source, null_values=["NA"]), JSONOutputAdapter(target), schema_model=Row)
    manager = PipeManager.parallelize_pipe(pipe, workers=2, should_merge=True)
    assert len(manager.pipes) == 2
    manager.run(show_progress=False)
    assert [json.loads(line) for line in target.read_text().splitlines()] == expected
