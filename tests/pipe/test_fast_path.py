"""Pipes with no Python stage run entirely in Rust: CSV to JSON Lines byte for byte as Python's
json would write it, the same with several encoders, and the count-only output."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from conftest import assert_completed
from pydantic import BaseModel

from zoopipe_core import (
    CountOutputAdapter,
    CSVInputAdapter,
    JSONOutputAdapter,
    MemoryOutputAdapter,
    MultiThreadExecutor,
    Pipe,
    SingleThreadExecutor,
)

TRICKY = [
    ["1", "plain", "x"],
    ["2", 'quote " and backslash \\', "tab\there"],
    ["3", "line\nbreak and \r\n crlf", "ctrl \x01\x1f \x7f"],
    ["4", "unicode é 漢字 🎉", ""],
    ["5", "a long value without anything to escape, well over eight bytes", "/slash/"],
]


def write_csv(path: Path, rows: list[list[str]], header=("id", "text", "other")) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


@pytest.mark.parametrize(
    "executor", [SingleThreadExecutor(batch_size=2), MultiThreadExecutor(max_workers=2, batch_size=2)]
)
def test_csv_to_jsonl_matches_json_dumps(tmp_path: Path, executor) -> None:
    source, target = tmp_path / "in.csv", tmp_path / "out.jsonl"
    rows = TRICKY * 7
    write_csv(source, rows)
    report = Pipe(CSVInputAdapter(source), JSONOutputAdapter(target), executor=executor).run()
    assert_completed(report, read=len(rows), written=len(rows), errors=0)
    # Python's csv module writes "" as an empty unquoted field: a null (docs/adapters.md, Nulls).
    expected = "".join(
        json.dumps(
            {k: v or None for k, v in zip(("id", "text", "other"), row, strict=False)},
            ensure_ascii=False,
            separators=(",", ":"),
        )
        + "\n"
        for row in rows
    )
    assert target.read_text(encoding="utf-8") == expected


def test_parse_errors_keep_their_lines_on_the_fast_path(tmp_path: Path) -> None:
    source = tmp_path / "bad.csv"
    source.write_bytes(b'a,b\r\n1,2\r\n3\r\n4,\xff\r\n5,"x\ny"\r\n6,"open\r\n')
    out, errors = MemoryOutputAdapter(), MemoryOutputAdapter()
    report = Pipe(CSVInputAdapter(source), out, error_output_adapter=errors).run()
    assert_completed(report, read=5, written=2, errors=3)
    assert [r["a"] for r in out.records] == ["1", "5"]
    assert [(e["line"], e["stage"]) for e in errors.records] == [(3, "parse"), (4, "parse"), (7, "parse")]
    assert "expected 2 fields" in errors.records[0]["errors"][0]
    assert "invalid UTF-8" in errors.records[1]["errors"][0]
    assert "unbalanced quote" in errors.records[2]["errors"][0]


def test_count_output_counts_without_writing(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    write_csv(source, TRICKY)
    report = Pipe(CSVInputAdapter(source), CountOutputAdapter()).run()
    assert_completed(report, read=5, written=5, errors=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_count_output_with_a_schema_counts_valid_and_invalid(tmp_path: Path) -> None:
    class Row(BaseModel):
        id: int
        text: str

    source = tmp_path / "in.csv"
    write_csv(source, [*TRICKY, ["x", "not a number", ""]])
    report = Pipe(
        CSVInputAdapter(source), "count", error_output_adapter=CountOutputAdapter(), schema_model=Row
    ).run()
    assert_completed(report, read=6, written=5, errors=1)


def test_count_output_is_registered_by_name() -> None:
    from zoopipe_core.adapters.resolve import resolve_output_adapter

    assert isinstance(resolve_output_adapter("count"), CountOutputAdapter)
