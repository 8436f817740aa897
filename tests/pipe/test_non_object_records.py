"""A transform that returns something other than a dict for a record (None, a string, a number,
a list) makes that record a serialize error on every output, never a written line or row
(issue 14, item 3). The check is made once, where the Python stage's outputs are taken in."""

from __future__ import annotations

import csv
import json
from typing import Any

import duckdb
import pyarrow.feather
import pyarrow.parquet
import pytest
from conftest import assert_completed, read_jsonl
from pydantic import BaseModel
from zoopipe_duckdb import DuckDBOutputAdapter

from zoopipe_core import (
    ArrowOutputAdapter,
    CSVOutputAdapter,
    JSONOutputAdapter,
    MemoryOutputAdapter,
    ParquetOutputAdapter,
    Pipe,
    PyGeneratorInputAdapter,
)
from zoopipe_core.adapters.base import BatchWriter, OutputAdapter

INPUT = [{"id": str(i), "name": f"n{i}"} for i in range(1, 7)]
# What the transform returns for each input record, and the reason the error record gives.
RETURNED: list[tuple[Any, str | None]] = [
    (None, "None"),
    ("text", "a str"),
    (5, "an int"),
    ({"id": 4, "name": "kept"}, None),
    (["a", "b"], "a list"),
    (2.5, "a float"),
]
REASON = "a record must be a dict (a JSON object); the transform returned {}"


class Item(BaseModel):
    id: int
    name: str


def replace_records(records: list[dict]) -> list[Any]:
    return [RETURNED[int(r["id"]) - 1][0] for r in records]


class ListWriterAdapter(OutputAdapter):
    """A third-party Python output: any BatchWriter gets only dicts."""

    name = "list-writer"

    def __init__(self) -> None:
        self.batches: list[list[Any]] = []

    def open_writer(self) -> BatchWriter:
        adapter = self

        class Writer(BatchWriter):
            def write_batch(self, records):
                assert all(isinstance(r, dict) for r in records), records
                adapter.batches.append(records)

            def commit(self):
                pass

            def abort(self):
                pass

        return Writer()


def _read_back(kind: str, output: Any, path) -> list[dict]:
    if kind in ("jsonl", "jsonl-no-model"):
        return read_jsonl(path)
    if kind == "json-array":
        return json.loads(path.read_text())
    if kind == "parquet":
        return pyarrow.parquet.read_table(path).to_pylist()
    if kind == "arrow":
        return pyarrow.feather.read_table(path).to_pylist()
    if kind == "csv":
        with open(path, newline="") as f:
            return [{"id": int(r["id"]), "name": r["name"]} for r in csv.DictReader(f)]
    if kind == "memory":
        return output.records
    if kind == "batch-writer":
        return [r for batch in output.batches for r in batch]
    if kind == "duckdb":
        with duckdb.connect(str(path), read_only=True) as con:
            return [{"id": i, "name": n} for i, n in con.execute("SELECT id, name FROM items").fetchall()]
    raise AssertionError(kind)


OUTPUTS = {
    "jsonl": lambda d: (JSONOutputAdapter(str(d / "out.jsonl")), d / "out.jsonl"),
    "jsonl-no-model": lambda d: (JSONOutputAdapter(str(d / "out.jsonl")), d / "out.jsonl"),
    "json-array": lambda d: (JSONOutputAdapter(str(d / "out.json")), d / "out.json"),
    "parquet": lambda d: (ParquetOutputAdapter(str(d / "out.parquet")), d / "out.parquet"),
    "arrow": lambda d: (ArrowOutputAdapter(str(d / "out.arrow")), d / "out.arrow"),
    "csv": lambda d: (CSVOutputAdapter(str(d / "out.csv")), d / "out.csv"),
    "memory": lambda d: (MemoryOutputAdapter(), None),
    "batch-writer": lambda d: (ListWriterAdapter(), None),
    "duckdb": lambda d: (DuckDBOutputAdapter(str(d / "out.duckdb"), table_name="items"), d / "out.duckdb"),
}


@pytest.mark.parametrize(
    "kind", [pytest.param(k, marks=pytest.mark.duckdb) if k == "duckdb" else k for k in OUTPUTS]
)
def test_records_that_are_not_objects_are_serialize_errors_on_every_output(tmp_path, kind):
    output, path = OUTPUTS[kind](tmp_path)
    errors_path = tmp_path / "errors.jsonl"
    report = Pipe(
        PyGeneratorInputAdapter(INPUT),
        output,
        error_output_adapter=JSONOutputAdapter(str(errors_path)),
        # Without a model the transform's outputs go to the output as they are.
        schema_model=None if kind == "jsonl-no-model" else Item,
        post_validation=[replace_records],
    ).run()
    assert_completed(report, read=6, written=1, errors=5)
    assert _read_back(kind, output, path) == [{"id": 4, "name": "kept"}]
    errors = read_jsonl(errors_path)
    expected = [(i + 1, REASON.format(found)) for i, (_, found) in enumerate(RETURNED) if found]
    assert [(e["line"], e["errors"][0]) for e in errors] == expected
    assert all(e["stage"] == "serialize" for e in errors)
    # The error record holds the record as read, not what the transform made of it.
    assert [e["record"] for e in errors] == [INPUT[line - 1] for line, _ in expected]


def test_a_model_instance_returned_by_a_transform_is_still_written():
    """Not a dict, but it converts to an object: written as pydantic's JSON form."""
    out = MemoryOutputAdapter()
    report = Pipe(
        PyGeneratorInputAdapter(INPUT[:2]),
        out,
        schema_model=Item,
        post_validation=[lambda records: [Item(**r) for r in records]],
    ).run()
    assert_completed(report, read=2, written=2, errors=0)
    assert out.records == [{"id": 1, "name": "n1"}, {"id": 2, "name": "n2"}]
