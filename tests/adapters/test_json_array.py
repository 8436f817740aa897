"""JSON array input and output (`format="array"`, or the `.json` suffix)."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from decimal import Decimal

import fsspec
import pytest

from tests.conftest import assert_completed
from zoopipe_core import (
    JSONInputAdapter,
    JSONOutputAdapter,
    MemoryOutputAdapter,
    Pipe,
    PipelineError,
    PyGeneratorInputAdapter,
)
from zoopipe_core.pipe.executors import SingleThreadExecutor


def test_the_suffix_chooses_the_format_and_format_overrides_it(tmp_path):
    assert JSONInputAdapter(tmp_path / "a.json").format == "array"
    assert JSONInputAdapter(tmp_path / "a.json.gz").format == "array"
    assert JSONInputAdapter(tmp_path / "a.jsonl").format == "jsonl"
    assert JSONOutputAdapter(tmp_path / "a.txt", format="array").format == "array"
    with pytest.raises(ValueError, match="array"):
        JSONOutputAdapter(tmp_path / "a.json", format="yaml")


def test_round_trip_across_batches(tmp_path):
    records = [{"id": i, "tags": ["x", {"y": i}], "s": 'a,]}"b'} for i in range(7)]
    path = tmp_path / "out.json"
    report = Pipe(
        PyGeneratorInputAdapter(records), JSONOutputAdapter(path), executor=SingleThreadExecutor(batch_size=3)
    ).run()
    assert_completed(report, written=7)
    assert json.loads(path.read_text()) == records
    out = MemoryOutputAdapter()
    assert_completed(
        Pipe(
            JSONInputAdapter(path, skip_rows=2, limit=3), out, executor=SingleThreadExecutor(batch_size=2)
        ).run(),
        read=3,
    )
    assert out.records == records[2:5]


def test_empty_arrays_and_compressed_files(tmp_path):
    empty = tmp_path / "empty.json"
    assert_completed(Pipe(PyGeneratorInputAdapter([]), JSONOutputAdapter(empty)).run(), read=0)
    assert json.loads(empty.read_text()) == []
    out = MemoryOutputAdapter()
    assert_completed(Pipe(JSONInputAdapter(empty), out).run(), read=0)
    packed = tmp_path / "in.json.gz"
    packed.write_bytes(gzip.compress(b'[{"a": 1}]'))
    assert_completed(Pipe(JSONInputAdapter(packed), out).run(), written=1)


def test_dates_decimals_and_timestamps_are_text(tmp_path):
    path = tmp_path / "out.json"
    record = {
        "d": dt.date(2024, 1, 31),
        "t": dt.datetime(2024, 1, 31, 8, 0, tzinfo=dt.timezone.utc),
        "p": Decimal("1.50"),
    }
    assert_completed(Pipe(PyGeneratorInputAdapter([record]), JSONOutputAdapter(path)).run())
    assert json.loads(path.read_text()) == [
        {"d": "2024-01-31", "t": "2024-01-31T08:00:00+00:00", "p": "1.50"}
    ]


def test_a_broken_element_is_an_error_record_naming_index_and_offset(tmp_path):
    path = tmp_path / "in.json"
    path.write_text('[{"a": 1}, {"a": nope}, [1], {"a": 4}]')
    out, errors = MemoryOutputAdapter(), MemoryOutputAdapter()
    report = Pipe(JSONInputAdapter(path), out, error_output_adapter=errors).run()
    assert_completed(report, read=4, written=2, errors=2)
    assert out.records == [{"a": 1}, {"a": 4}]
    first, second = errors.records
    assert first["stage"] == "parse" and first["line"] == 2 and first["source"] == str(path)
    assert first["errors"][0].startswith("element 1 (byte offset 11): invalid JSON")
    assert second["errors"][0].startswith("element 2") and "expected a JSON object" in second["errors"][0]


def test_a_truncated_array_fails_and_publishes_nothing(tmp_path):
    path = tmp_path / "in.json"
    path.write_text('[{"a": 1}, {"a": [2, ')
    target = tmp_path / "out.jsonl"
    with pytest.raises(PipelineError, match=r"in.json.*truncated.*element 2"):
        Pipe(JSONInputAdapter(path), JSONOutputAdapter(target)).run()
    assert not target.exists()
    path.write_text('{"a": 1}\n')
    with pytest.raises(PipelineError, match="must start with"):
        Pipe(JSONInputAdapter(path), JSONOutputAdapter(target)).run()


def test_fsspec_urls(tmp_path):
    fsspec.filesystem("memory").pipe("/ja/in.json", b'[{"a": 1}, {"a": 2}]')
    assert_completed(
        Pipe(JSONInputAdapter("memory://ja/in.json"), JSONOutputAdapter("memory://ja/out.json")).run(),
        written=2,
    )
    with fsspec.open("memory://ja/out.json", "rb") as f:
        assert json.loads(f.read()) == [{"a": 1}, {"a": 2}]
