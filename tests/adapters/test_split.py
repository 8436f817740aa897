"""Exact splitting of CSV and JSON Lines files: every record read exactly once, in order, with the
line number it has in the whole file, for any number of shards."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, model_validator

from zoopipe_core import CSVInputAdapter, JSONInputAdapter, MemoryOutputAdapter, Pipe
from zoopipe_core.errors import ShardingError
from zoopipe_core.pipe.runner import _native


class Reject(BaseModel):
    """Fails every record, so the error output shows each record with its line."""

    model_config = ConfigDict(extra="allow")

    @model_validator(mode="before")
    @classmethod
    def reject(cls, data: object) -> object:
        raise ValueError("rejected on purpose")


def read_with_lines(adapter) -> list[tuple[int, dict]]:
    errors = MemoryOutputAdapter()
    report = Pipe(adapter, MemoryOutputAdapter(), error_output_adapter=errors, schema_model=Reject).run()
    assert report.success_count == 0
    assert all(e["stage"] == "validation" for e in errors.records), errors.records
    return [(e["line"], e["record"]) for e in errors.records]


FIELD = st.text(alphabet=st.sampled_from(list('ab,"\n\r xé')), max_size=6)


def csv_field(text: str, always_quote: bool) -> str:
    if always_quote or any(c in text for c in ',"\n\r') or text == "":
        return '"' + text.replace('"', '""') + '"'
    return text


@st.composite
def csv_files(draw):
    ncols = draw(st.integers(1, 4))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    header = [f"c{i}" for i in range(ncols)]
    rows = draw(st.lists(st.lists(FIELD, min_size=ncols, max_size=ncols), max_size=12))
    text = ",".join(header) + newline
    expected = []
    for row in rows:
        line = text.count("\n") + 1
        cells = [csv_field(f, draw(st.booleans())) for f in row]
        text += ",".join(cells) + newline
        expected.append((line, dict(zip(header, row, strict=False))))
    if rows and not draw(st.booleans()):
        text = text[: -len(newline)]  # no newline after the last record
    return text, expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=csv_files(), n=st.integers(1, 32))
def test_csv_shards_hold_every_record_once_in_order_with_true_lines(tmp_path: Path, data, n: int) -> None:
    text, expected = data
    path = tmp_path / "f.csv"
    path.write_bytes(text.encode())
    shards = CSVInputAdapter(str(path)).split(n)
    assert 1 <= len(shards) <= n
    got = []
    for shard in shards:
        got.extend(read_with_lines(shard))
    assert got == expected


@st.composite
def jsonl_files(draw):
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text, expected = "", []
    for i in range(draw(st.integers(0, 15))):
        if draw(st.integers(0, 4)) == 0:
            text += newline  # a blank line
        record = {"i": i, "s": draw(st.text(alphabet=st.sampled_from(list('a"\n\\ é,')), max_size=5))}
        expected.append((text.count("\n") + 1, record))
        text += json.dumps(record, ensure_ascii=draw(st.booleans())) + newline
    if expected and draw(st.booleans()):
        text = text[: -len(newline)]
    return text, expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=jsonl_files(), n=st.integers(1, 32))
def test_jsonl_shards_hold_every_record_once_in_order_with_true_lines(tmp_path: Path, data, n: int) -> None:
    text, expected = data
    path = tmp_path / "f.jsonl"
    path.write_bytes(text.encode())
    got = []
    for shard in JSONInputAdapter(str(path)).split(n):
        got.extend(read_with_lines(shard))
    assert got == expected


def test_split_points_signature_and_ranges(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b'a,b\n1,"x\ny"\n2,z\n3,w\n')
    points = _native.split_points(str(path), "csv", 3, delimiter=",", quotechar='"', has_header=True)
    assert points[0][0] == 4 and points[-1][1] == path.stat().st_size
    assert all(end == nxt for (_, end, _), (nxt, _, _) in itertools.pairwise(points))
    # The quoted newline is never a cut: the second record starts on line 4.
    assert [p[2] for p in points] == [1, 3, 4]


def test_a_shard_reports_errors_with_the_lines_of_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"a,b\n1,2\n3,4\n5\n6,7\n")
    errors = MemoryOutputAdapter()
    shard = CSVInputAdapter(str(path)).split(2)[-1]
    Pipe(shard, MemoryOutputAdapter(), error_output_adapter=errors).run()
    assert [e["line"] for e in errors.records] == [4]
    assert "expected 2 fields, found 1" in errors.records[0]["errors"][0]


def test_compressed_files_cannot_be_split(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    path.write_bytes(b"\x1f\x8b\x08\x00rest")
    with pytest.raises(_native.ExecutionError, match="cannot split a gzip-compressed file"):
        _native.split_points(str(path), "jsonl", 2)
    with pytest.raises(ShardingError, match="compressed"):
        JSONInputAdapter(str(tmp_path / "f.jsonl.gz")).split(2)


def test_bad_arguments_are_explained(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"a\n1\n")
    with pytest.raises(ValueError, match='use "csv" or "jsonl"'):
        _native.split_points(str(path), "parquet", 2)
    with pytest.raises(_native.ExecutionError, match="0 shards"):
        _native.split_points(str(path), "csv", 0)
    with pytest.raises(ValueError, match="start <= end"):
        CSVInputAdapter(str(path), byte_range=(5, 2))
