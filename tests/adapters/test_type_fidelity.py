"""Types survive a pipe: timestamps with time zones, dates, decimals, lists, structs,
dictionary-encoded strings and nulls, through the all-Rust path and through Python, checked
with pyarrow as the independent reader and writer."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from pydantic import AwareDatetime, BaseModel, Field

from tests.conftest import assert_completed
from zoopipe_core import (
    ArrowInputAdapter,
    ArrowOutputAdapter,
    CSVOutputAdapter,
    JSONOutputAdapter,
    MemoryOutputAdapter,
    ParquetInputAdapter,
    ParquetOutputAdapter,
    Pipe,
    PyGeneratorInputAdapter,
)

UTC = dt.timezone.utc


def typed_table() -> pa.Table:
    """Every type the issue names, with a null in each column."""
    return pa.table(
        {
            "id": pa.array([1, 2, None], pa.int64()),
            "small": pa.array([1, None, 3], pa.int32()),
            "at": pa.array(
                [
                    dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
                    None,
                    dt.datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
                ],
                pa.timestamp("us", tz="UTC"),
            ),
            "local": pa.array(
                [dt.datetime(2024, 6, 1, 12, tzinfo=ZoneInfo("Europe/Paris")), None, None],
                pa.timestamp("ns", tz="Europe/Paris"),
            ),
            "naive": pa.array(
                [dt.datetime(2024, 1, 1, 0, 0), None, dt.datetime(2000, 2, 29, 1, 2, 3)], pa.timestamp("ms")
            ),
            "day": pa.array([dt.date(2024, 2, 29), dt.date(1900, 1, 1), None], pa.date32()),
            "price": pa.array([Decimal("12.30"), None, Decimal("-0.01")], pa.decimal128(10, 2)),
            "tags": pa.array([["a", "b"], [], None], pa.list_(pa.string())),
            "addr": pa.array(
                [{"city": "Oslo", "zip": 150}, None, {"city": None, "zip": 2}],
                pa.struct([("city", pa.string()), ("zip", pa.int64())]),
            ),
            "kind": pa.array(["x", "y", None]).dictionary_encode(),
            "score": pa.array([1.5, None, -2.0], pa.float64()),
            "flag": pa.array([True, None, False], pa.bool_()),
            "blob": pa.array([b"\xff\x01", None, b"text"], pa.binary()),
            "nothing": pa.array([None, None, None], pa.string()),
        }
    )


@pytest.fixture
def typed_parquet(tmp_path):
    path = tmp_path / "typed.parquet"
    pq.write_table(typed_table(), path)
    return path


def test_parquet_to_parquet_in_rust_keeps_schema_and_values(typed_parquet, tmp_path):
    out = tmp_path / "out.parquet"
    report = Pipe(ParquetInputAdapter(typed_parquet), ParquetOutputAdapter(out)).run()
    assert_completed(report, read=3, written=3)
    back = pq.read_table(out)
    expected = typed_table()
    assert back.schema.remove_metadata() == expected.schema
    assert back.to_pylist() == expected.to_pylist()


def test_parquet_to_arrow_in_rust_keeps_schema_and_values(typed_parquet, tmp_path):
    for name in ("out.arrow", "out.arrows"):
        out = tmp_path / name
        assert_completed(Pipe(ParquetInputAdapter(typed_parquet), ArrowOutputAdapter(out)).run(), written=3)
        if name.endswith(".arrows"):
            with pa.ipc.open_stream(out) as reader:
                back = reader.read_all()
        else:
            back = feather.read_table(out)
        assert back.schema.remove_metadata() == typed_table().schema
        assert back.to_pylist() == typed_table().to_pylist()


def test_python_sees_python_types_and_writes_them_back(typed_parquet, tmp_path):
    seen = {}

    def look(records):
        seen.update(records[0])
        return records

    out = tmp_path / "out.parquet"
    report = Pipe(ParquetInputAdapter(typed_parquet), ParquetOutputAdapter(out), pre_validation=[look]).run()
    assert_completed(report, written=3)
    assert seen["at"] == dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC) and seen["at"].tzinfo is not None
    assert seen["local"] == dt.datetime(2024, 6, 1, 12, tzinfo=ZoneInfo("Europe/Paris"))
    assert seen["naive"] == dt.datetime(2024, 1, 1) and seen["naive"].tzinfo is None
    assert seen["day"] == dt.date(2024, 2, 29)
    assert seen["price"] == Decimal("12.30") and str(seen["price"]) == "12.30"
    assert seen["tags"] == ["a", "b"] and seen["addr"] == {"city": "Oslo", "zip": 150}
    assert seen["kind"] == "x" and seen["blob"] == b"\xff\x01" and seen["nothing"] is None
    back = pq.read_table(out)
    assert back.schema.remove_metadata() == typed_table().schema
    assert back.to_pylist() == typed_table().to_pylist()


def test_python_values_without_an_input_table_are_inferred_with_their_types(tmp_path):
    records = [
        {
            "at": dt.datetime(2024, 1, 1, tzinfo=UTC),
            "day": dt.date(2024, 1, 1),
            "price": Decimal("1.25"),
            "tags": [1, 2],
            "addr": {"city": "Oslo"},
            "n": None,
        },
        {"at": None, "day": None, "price": None, "tags": None, "addr": None, "n": "later a string"},
    ]
    out = tmp_path / "out.parquet"
    assert_completed(Pipe(PyGeneratorInputAdapter(records), ParquetOutputAdapter(out)).run(), written=2)
    back = pq.read_table(out)
    assert back.schema.field("at").type == pa.timestamp("us", tz="UTC")
    assert back.schema.field("day").type == pa.date32()
    assert back.schema.field("price").type == pa.decimal128(3, 2)
    assert back.schema.field("tags").type == pa.list_(pa.int64())
    assert back.schema.field("n").type == pa.string()
    assert back.to_pylist() == records


class Address(BaseModel):
    city: str
    zip: int | None = None


class Order(BaseModel):
    id: int
    at: AwareDatetime
    day: dt.date
    price: Decimal = Field(max_digits=10, decimal_places=2)
    tags: list[str]
    addr: Address | None = None
    note: str | None = None


def test_a_schema_model_sets_the_output_schema(tmp_path):
    rows = [
        {
            "id": "1",
            "at": "2024-01-02T03:04:05+00:00",
            "day": "2024-02-29",
            "price": "12.3",
            "tags": ["a"],
            "addr": {"city": "Oslo"},
        },
        {"id": "2", "at": "2024-01-02T03:04:05+02:00", "day": "2024-03-01", "price": "1", "tags": []},
    ]
    out = tmp_path / "out.parquet"
    report = Pipe(PyGeneratorInputAdapter(rows), ParquetOutputAdapter(out), schema_model=Order).run()
    assert_completed(report, written=2)
    schema = pq.read_schema(out).remove_metadata()
    assert schema == pa.schema(
        [
            pa.field("id", pa.int64(), nullable=False),
            pa.field("at", pa.timestamp("us", tz="UTC"), nullable=False),
            pa.field("day", pa.date32(), nullable=False),
            pa.field("price", pa.decimal128(10, 2), nullable=False),
            pa.field("tags", pa.list_(pa.field("item", pa.string(), nullable=False)), nullable=False),
            pa.field(
                "addr",
                pa.struct([pa.field("city", pa.string(), nullable=False), pa.field("zip", pa.int64())]),
            ),
            pa.field("note", pa.string()),
        ]
    )
    back = pq.read_table(out).to_pylist()
    assert back[0]["price"] == Decimal("12.30") and back[1]["addr"] is None
    assert back[1]["at"] == dt.datetime(2024, 1, 2, 1, 4, 5, tzinfo=UTC)


def test_a_value_that_does_not_fit_the_model_schema_is_a_serialize_error(tmp_path):
    class Row(BaseModel):
        price: Decimal = Field(max_digits=4, decimal_places=2)

    def grow(records):
        return [{"price": r["price"] * 1000} for r in records]

    out, errors = tmp_path / "out.parquet", tmp_path / "errors.jsonl"
    report = Pipe(
        PyGeneratorInputAdapter([{"price": "1.5"}, {"price": "0.01"}]),
        ParquetOutputAdapter(out),
        error_output_adapter=JSONOutputAdapter(errors),
        schema_model=Row,
        pre_validation=[],
    ).run()
    assert_completed(report, written=2)
    # Now a transform after validation makes one value too large for the (inferred) schema.
    report = Pipe(
        ParquetInputAdapter(out),
        ParquetOutputAdapter(tmp_path / "again.parquet"),
        error_output_adapter=JSONOutputAdapter(errors),
        pre_validation=[grow],
    ).run()
    assert_completed(report, read=2, written=1, errors=1)
    error = json.loads(errors.read_text().splitlines()[0])
    assert error["stage"] == "serialize" and "price" in error["errors"][0] and "1500.00" in error["errors"][0]


def test_json_and_csv_write_iso_dates_and_timestamps(typed_parquet, tmp_path):
    out = tmp_path / "out.jsonl"
    assert_completed(
        Pipe(
            ParquetInputAdapter(typed_parquet, columns=["at", "local", "naive", "day", "price", "blob"]),
            JSONOutputAdapter(out),
        ).run(),
        written=3,
    )
    first = json.loads(out.read_text().splitlines()[0])
    assert first == {
        "at": "2024-01-02T03:04:05.000006+00:00",
        "local": "2024-06-01T10:00:00Z",
        "naive": "2024-01-01T00:00:00",
        "day": "2024-02-29",
        "price": "12.30",
        "blob": "/wE=",
    }
    csv_out = tmp_path / "out.csv"
    assert_completed(
        Pipe(ParquetInputAdapter(typed_parquet, columns=["day", "at"]), CSVOutputAdapter(csv_out)).run()
    )
    assert csv_out.read_text().splitlines()[:2] == ["day,at", "2024-02-29,2024-01-02T03:04:05.000006+00:00"]


def test_arrow_round_trip_through_python(tmp_path):
    source = tmp_path / "in.arrow"
    feather.write_feather(typed_table(), source, compression="uncompressed")
    out = MemoryOutputAdapter()
    assert_completed(Pipe(ArrowInputAdapter(source), out, pre_validation=[lambda rs: rs]).run(), written=3)
    assert out.records == typed_table().to_pylist()


def test_dictionary_columns_across_many_batches(tmp_path):
    table = pa.table(
        {"k": pa.array([f"v{i % 7 if i < 9000 else i % 11}" for i in range(20_000)]).dictionary_encode()}
    )
    source = tmp_path / "dict.parquet"
    pq.write_table(table, source)
    for name in ("out.arrow", "out.arrows", "out.parquet"):
        out = tmp_path / name
        output = ParquetOutputAdapter(out) if name.endswith(".parquet") else ArrowOutputAdapter(out)
        assert_completed(Pipe(ParquetInputAdapter(source), output).run(), written=20_000)
        if name.endswith(".parquet"):
            back = pq.read_table(out)
        elif name.endswith(".arrows"):
            with pa.ipc.open_stream(out) as reader:
                back = reader.read_all()
        else:
            back = feather.read_table(out)
        assert back.schema.field("k").type == pa.dictionary(pa.int32(), pa.string())
        assert back.to_pylist() == table.to_pylist()
