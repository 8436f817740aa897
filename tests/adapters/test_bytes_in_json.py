"""Bytes in JSON outputs are always standard base64 (RFC 4648, padded), UTF-8 or not, on every
JSON path (issue 14, item 5): a reader always knows how to get the bytes back, and
``zoopipe_core.Base64Bytes`` does."""

from __future__ import annotations

import base64
import json

import pytest
from conftest import assert_completed, read_jsonl
from pydantic import BaseModel

from zoopipe_core import (
    Base64Bytes,
    JSONInputAdapter,
    JSONOutputAdapter,
    MemoryOutputAdapter,
    ParquetOutputAdapter,
    Pipe,
    PyGeneratorInputAdapter,
)

BLOBS = [b"plain text", "Ünïcödé ✓".encode(), b"\xff\x00\x80\xfe", b"", b"\x00" * 7, bytes(range(256))]
RECORDS = [{"id": i, "data": blob} for i, blob in enumerate(BLOBS)]


class Blob(BaseModel):
    id: int
    data: Base64Bytes


def identity(records):
    return records


def _write(path, with_stage: bool):
    report = Pipe(
        PyGeneratorInputAdapter(RECORDS),
        JSONOutputAdapter(str(path)),
        post_validation=[identity] if with_stage else [],
    ).run()
    assert_completed(report, read=len(RECORDS), written=len(RECORDS), errors=0)


@pytest.mark.parametrize("name", ["out.jsonl", "out.json"])
def test_bytes_are_standard_base64_on_both_json_paths(tmp_path, name):
    staged, plain = tmp_path / f"staged-{name}", tmp_path / f"plain-{name}"
    _write(staged, with_stage=True)  # JSON written by the Python stage (pyjson.rs)
    _write(plain, with_stage=False)  # JSON written by the encoder threads (encode.rs)
    assert staged.read_bytes() == plain.read_bytes()
    rows = read_jsonl(plain) if name.endswith(".jsonl") else json.loads(plain.read_text())
    assert [r["data"] for r in rows] == [base64.b64encode(b).decode() for b in BLOBS]


def test_bytes_round_trip_through_json_lines_and_a_model(tmp_path):
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    _write(first, with_stage=False)
    out = MemoryOutputAdapter()
    report = Pipe(JSONInputAdapter(str(first)), out, schema_model=Blob).run()
    assert_completed(report, read=len(RECORDS), written=len(RECORDS), errors=0)
    assert out.records == RECORDS
    # Written again by a pipe with the same model: the same text, not base64 of base64.
    report = Pipe(JSONInputAdapter(str(first)), JSONOutputAdapter(str(second)), schema_model=Blob).run()
    assert_completed(report, read=len(RECORDS), written=len(RECORDS), errors=0)
    assert second.read_bytes() == first.read_bytes()


def test_base64_bytes_take_binary_from_tables_and_refuse_bad_text(tmp_path):
    import pyarrow.parquet

    table = tmp_path / "blobs.parquet"
    assert_completed(Pipe(PyGeneratorInputAdapter(RECORDS), ParquetOutputAdapter(str(table))).run())
    assert pyarrow.parquet.read_table(table).column("data").to_pylist() == BLOBS
    errors = MemoryOutputAdapter()
    report = Pipe(
        PyGeneratorInputAdapter([{"id": 1, "data": "not base64!"}]),
        MemoryOutputAdapter(),
        error_output_adapter=errors,
        schema_model=Blob,
    ).run()
    assert_completed(report, read=1, written=0, errors=1)
    assert "expected standard base64 text (RFC 4648, padded)" in errors.records[0]["errors"][0]


def test_error_records_hold_bytes_as_base64(tmp_path):
    class Strict(BaseModel):
        id: int

    errors = tmp_path / "errors.jsonl"
    report = Pipe(
        PyGeneratorInputAdapter([{"id": "x", "data": b"\xff\x00"}, {"id": "y", "data": b"ok"}]),
        MemoryOutputAdapter(),
        error_output_adapter=JSONOutputAdapter(str(errors)),
        schema_model=Strict,
    ).run()
    assert_completed(report, read=2, written=0, errors=2)
    assert [e["record"]["data"] for e in read_jsonl(errors)] == ["/wA=", "b2s="]
