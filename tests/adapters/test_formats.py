"""Formats: CSV options, encodings and compression, JSON Lines, Python generators and memory
outputs, CSV output conventions, and fsspec URLs (memory://)."""

from __future__ import annotations

import gzip
import json

import pytest
from conftest import assert_completed, assert_counts_add_up, count_lines, read_jsonl
from pydantic import BaseModel

from zoopipe_core import (
    CSVInputAdapter,
    CSVOutputAdapter,
    JSONInputAdapter,
    JSONOutputAdapter,
    MemoryOutputAdapter,
    Pipe,
    PipelineError,
    PyGeneratorInputAdapter,
    SingleThreadExecutor,
)


class Item(BaseModel):
    id: int
    label: str


ROWS = [
    {"id": "1", "label": "plain"},
    {"id": "2", "label": "with;semicolon"},
    {"id": "3", "label": 'it\'s "quoted"'},
]


# -- CSV input -------------------------------------------------------------------------------


def test_csv_delimiter_and_quote_char(write_csv):
    path = write_csv("semi.csv", "id;label\n1;plain\n2;'with;semicolon'\n3;'it''s \"quoted\"'\n")
    out = MemoryOutputAdapter()
    report = Pipe(CSVInputAdapter(path, delimiter=";", quotechar="'"), out).run()
    assert_completed(report, read=3, written=3, errors=0)
    assert out.records == ROWS


def test_csv_quoted_fields_with_newlines_keep_their_line_numbers(write_csv):
    path = write_csv("multi.csv", 'id,label\n1,"two\nlines"\n2,x\n')
    out, errors = MemoryOutputAdapter(), MemoryOutputAdapter()
    report = Pipe(
        CSVInputAdapter(path),
        out,
        error_output_adapter=errors,
        schema_model=Item,
        post_validation=[lambda rs: [r if r["id"] == 1 else {**r, "id": object()} for r in rs]],
    ).run()
    assert_completed(report, read=2, written=1, errors=1)
    assert out.records == [{"id": 1, "label": "two\nlines"}]
    # The second record starts on line 4: the first one spans lines 2 and 3.
    assert errors.records[0]["line"] == 4


def test_csv_without_header_uses_field_names(write_csv):
    path = write_csv("noheader.tsv", "1\tplain\n2\tother\n")
    out = MemoryOutputAdapter()
    report = Pipe(
        CSVInputAdapter(path, delimiter="\t", has_header=False, field_names=["id", "label"]),
        out,
        schema_model=Item,
    ).run()
    assert_completed(report, read=2, written=2, errors=0)
    assert out.records == [{"id": 1, "label": "plain"}, {"id": 2, "label": "other"}]


def test_csv_without_header_reports_file_line_numbers(write_csv):
    path = write_csv("noheader.csv", "1,a\nx,b\n")
    errors = MemoryOutputAdapter()
    report = Pipe(
        CSVInputAdapter(path, has_header=False, field_names=["id", "label"]),
        MemoryOutputAdapter(),
        error_output_adapter=errors,
        schema_model=Item,
    ).run()
    assert_completed(report, read=2, written=1, errors=1)
    assert errors.records[0]["line"] == 2


def test_field_names_replace_the_header(write_csv):
    path = write_csv("renamed.csv", "A,B\n1,x\n")
    out = MemoryOutputAdapter()
    report = Pipe(CSVInputAdapter(path, field_names=["id", "label"]), out, schema_model=Item).run()
    assert_completed(report, read=1, written=1, errors=0)
    assert out.records == [{"id": 1, "label": "x"}]


def test_csv_utf8_with_and_without_bom(write_csv):
    for bom in (False, True):
        path = write_csv(f"bom-{bom}.csv", "id,label\n1,café\n2,日本\n", bom=bom)
        out = MemoryOutputAdapter()
        report = Pipe(CSVInputAdapter(path), out, schema_model=Item).run()
        assert_completed(report, read=2, written=2, errors=0)
        assert out.records == [{"id": 1, "label": "café"}, {"id": 2, "label": "日本"}], bom


def test_csv_with_bom_and_no_header(write_csv):
    path = write_csv("bom-noheader.csv", "1,a\n", bom=True)
    out = MemoryOutputAdapter()
    report = Pipe(
        CSVInputAdapter(path, has_header=False, field_names=["id", "label"]), out, schema_model=Item
    ).run()
    assert_completed(report, read=1, written=1, errors=0)
    assert out.records == [{"id": 1, "label": "a"}]


def test_crlf_line_endings(write_csv):
    path = write_csv("crlf.csv", "id,label\r\n1,a\r\n2,b\r\n")
    out = MemoryOutputAdapter()
    report = Pipe(CSVInputAdapter(path), out, schema_model=Item).run()
    assert_completed(report, read=2, written=2, errors=0)
    assert out.records == [{"id": 1, "label": "a"}, {"id": 2, "label": "b"}]


def test_gzip_csv_input(write_csv):
    path = write_csv("data.csv.gz", "id,label\n" + "".join(f"{i},l{i}\n" for i in range(5000)))
    out = MemoryOutputAdapter()
    report = Pipe(CSVInputAdapter(path), out, schema_model=Item).run()
    assert_completed(report, read=5000, written=5000, errors=0)
    assert out.records[-1] == {"id": 4999, "label": "l4999"}


def test_gzip_and_zstd_outputs_round_trip(write_csv, tmp_path):
    path = write_csv("data.csv", "id,label\n" + "".join(f"{i},l{i}\n" for i in range(3000)))
    expected = [{"id": str(i), "label": f"l{i}"} for i in range(3000)]
    for suffix in ("csv.gz", "csv.zst", "jsonl.gz", "jsonl.zst"):
        target = tmp_path / f"copy.{suffix}"
        output = CSVOutputAdapter(str(target)) if suffix.startswith("csv") else JSONOutputAdapter(str(target))
        report = Pipe(CSVInputAdapter(path), output).run()
        assert_completed(report, read=3000, written=3000, errors=0)
        # Compressed for real, and readable by the standard tools (gzip module, zstd command).
        magic = b"\x28\xb5\x2f\xfd" if suffix.endswith("zst") else b"\x1f\x8b"
        assert target.read_bytes().startswith(magic)
        assert count_lines(target) == (3001 if suffix.startswith("csv") else 3000)
        # And readable by zoopipe again.
        back = MemoryOutputAdapter()
        reader = CSVInputAdapter(str(target)) if suffix.startswith("csv") else JSONInputAdapter(str(target))
        report = Pipe(reader, back).run()
        assert_completed(report, read=3000, written=3000, errors=0)
        assert back.records == expected, suffix


def test_gzip_jsonl_input_written_by_gzip(tmp_path):
    path = tmp_path / "in.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"id": 1, "label": "a"}\n{"id": 2, "label": "b"}\n'))
    out = MemoryOutputAdapter()
    report = Pipe(JSONInputAdapter(str(path)), out, schema_model=Item).run()
    assert_completed(report, read=2, written=2, errors=0)
    assert [r["id"] for r in out.records] == [1, 2]


# -- JSON Lines ------------------------------------------------------------------------------


def test_jsonl_round_trip_keeps_nested_values_and_field_order(tmp_path):
    rows = [
        {"z": 1, "a": [1, 2.5, None, True], "m": {"k": "v", "n": {"deep": "é"}}, "big": 2**63 + 5},
        {"z": -3, "a": [], "m": {}, "big": 0},
    ]
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    report = Pipe(JSONInputAdapter(str(source)), JSONOutputAdapter(str(target))).run()
    assert_completed(report, read=2, written=2, errors=0)
    assert count_lines(target) == 2
    assert read_jsonl(target) == rows
    assert [list(r) for r in read_jsonl(target)] == [list(r) for r in rows]


def test_jsonl_blank_lines_are_skipped_and_lines_counted(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": 1, "label": "a"}\n\n   \n{"id": "x", "label": "b"}\r\n')
    errors = MemoryOutputAdapter()
    report = Pipe(
        JSONInputAdapter(str(source)), MemoryOutputAdapter(), error_output_adapter=errors, schema_model=Item
    ).run()
    assert_completed(report, read=2, written=1, errors=1)
    assert errors.records[0]["line"] == 4


def test_jsonl_with_a_byte_order_mark(tmp_path):
    source = tmp_path / "bom.jsonl"
    source.write_bytes(b'\xef\xbb\xbf{"id": 1, "label": "a"}\n{"id": 2, "label": "b"}\n')
    out = MemoryOutputAdapter()
    report = Pipe(JSONInputAdapter(str(source)), out, schema_model=Item).run()
    assert_completed(report, read=2, written=2, errors=0)
    assert [r["id"] for r in out.records] == [1, 2]


# -- Python generator input and memory output --------------------------------------------


def test_generator_input_is_consumed_lazily():
    produced = []

    def rows():
        for i in range(10):
            produced.append(i)
            yield {"id": i, "label": str(i)}

    out = MemoryOutputAdapter()
    report = Pipe(
        PyGeneratorInputAdapter(rows()), out, schema_model=Item, executor=SingleThreadExecutor(batch_size=3)
    ).run()
    assert_completed(report, read=10, written=10, errors=0)
    assert produced == list(range(10))
    assert [r["id"] for r in out.records] == list(range(10))


def test_generator_items_that_are_not_dicts_are_errors():
    errors = MemoryOutputAdapter()
    report = Pipe(
        PyGeneratorInputAdapter([{"a": 1}, [1, 2], "text", {"a": 2}]),
        MemoryOutputAdapter(),
        error_output_adapter=errors,
    ).run()
    assert_completed(report, read=4, written=2, errors=2)
    assert [(e["line"], e["stage"]) for e in errors.records] == [(2, "parse"), (3, "parse")]
    assert "expected a dict, found list" in errors.records[0]["errors"][0]


def test_generator_source_name_appears_in_errors():
    errors = MemoryOutputAdapter()
    report = Pipe(
        PyGeneratorInputAdapter([{"id": "x", "label": "a"}], name="crm-export"),
        MemoryOutputAdapter(),
        error_output_adapter=errors,
        schema_model=Item,
    ).run()
    assert_completed(report, read=1, written=0, errors=1)
    assert errors.records[0]["source"] == "crm-export"


def test_memory_output_is_empty_until_the_run_succeeds():
    out = MemoryOutputAdapter()

    def rows():
        yield {"a": 1}
        raise RuntimeError("boom")

    pipe = Pipe(PyGeneratorInputAdapter(rows()), out, executor=SingleThreadExecutor(batch_size=1))
    with pytest.raises(PipelineError, match="boom"):
        pipe.run()
    assert pipe.report.status.value == "failed"
    assert_counts_add_up(pipe.report)
    assert out.records == []


# -- CSV output --------------------------------------------------------------------------------


def test_csv_output_nulls_booleans_and_one_header(tmp_path):
    rows = [{"id": i, "flag": i % 2 == 0, "note": None if i % 3 else "n", "score": i / 4} for i in range(10)]
    target = tmp_path / "out.csv"
    report = Pipe(
        PyGeneratorInputAdapter(rows),
        CSVOutputAdapter(str(target)),
        executor=SingleThreadExecutor(batch_size=3),
    ).run()
    assert_completed(report, read=10, written=10, errors=0)
    lines = target.read_text().splitlines()
    assert count_lines(target) == 11
    assert lines.count("id,flag,note,score") == 1 and lines[0] == "id,flag,note,score"
    assert lines[1] == "0,true,n,0.0"
    assert lines[2] == "1,false,,0.25"


def test_csv_output_quotes_delimiters_and_newlines(tmp_path):
    rows = [{"a": "x,y", "b": 'say "hi"', "c": "two\nlines"}]
    target = tmp_path / "out.csv"
    report = Pipe(PyGeneratorInputAdapter(rows), CSVOutputAdapter(str(target))).run()
    assert_completed(report, read=1, written=1, errors=0)
    back = MemoryOutputAdapter()
    assert_completed(Pipe(CSVInputAdapter(str(target)), back).run(), read=1, written=1, errors=0)
    assert back.records == rows


def test_csv_output_with_field_names_and_delimiter(tmp_path, write_csv):
    path = write_csv("in.csv", "id,label\n1,a\n")
    target = tmp_path / "out.csv"
    report = Pipe(
        CSVInputAdapter(path),
        CSVOutputAdapter(str(target), delimiter="|", field_names=["label", "id"]),
        schema_model=Item,
    ).run()
    assert_completed(report, read=1, written=1, errors=0)
    assert target.read_text() == "label|id\na|1\n"


def test_csv_to_csv_passthrough_is_byte_faithful(tmp_path, write_csv):
    text = 'id,label\n1,"a,b"\n2,"line\nbreak"\n3,plain\n'
    path = write_csv("in.csv", text)
    target = tmp_path / "out.csv"
    report = Pipe(CSVInputAdapter(path), CSVOutputAdapter(str(target))).run()
    assert_completed(report, read=3, written=3, errors=0)
    assert target.read_text() == text


def test_csv_output_header_only_input_with_field_names(tmp_path, write_csv):
    path = write_csv("in.csv", "id,label\n")
    target = tmp_path / "out.csv"
    report = Pipe(CSVInputAdapter(path), CSVOutputAdapter(str(target), field_names=["id", "label"])).run()
    assert_completed(report, read=0, written=0, errors=0)
    assert target.read_text() == "id,label\n"


# -- fsspec URLs ------------------------------------------------------------------------------


def test_file_urls(tmp_path, write_csv):
    path = write_csv("in.csv", "id,label\n1,a\n")
    target = tmp_path / "out.jsonl"
    report = Pipe(
        CSVInputAdapter(f"file://{path}"), JSONOutputAdapter(f"file://{target}"), schema_model=Item
    ).run()
    assert_completed(report, read=1, written=1, errors=0)
    assert read_jsonl(target) == [{"id": 1, "label": "a"}]


def test_memory_urls_for_input_output_and_errors(memfs):
    memfs.pipe("/in/data.csv", b"id,label\n1,a\nx,b\n3,c\n")
    report = Pipe(
        CSVInputAdapter("memory://in/data.csv"),
        JSONOutputAdapter("memory://out/data.jsonl"),
        error_output_adapter=JSONOutputAdapter("memory://out/errors.jsonl"),
        schema_model=Item,
    ).run()
    assert_completed(report, read=3, written=2, errors=1)
    assert sorted(memfs.ls("/out", detail=False)) == ["/out/data.jsonl", "/out/errors.jsonl"]
    assert [json.loads(line) for line in memfs.cat("/out/data.jsonl").splitlines()] == [
        {"id": 1, "label": "a"},
        {"id": 3, "label": "c"},
    ]
    (error,) = [json.loads(line) for line in memfs.cat("/out/errors.jsonl").splitlines()]
    assert (error["source"], error["line"], error["stage"]) == ("memory://in/data.csv", 3, "validation")


def test_memory_urls_with_compression(memfs):
    memfs.pipe("/in/data.jsonl.gz", gzip.compress(b'{"id": 1, "label": "a"}\n'))
    report = Pipe(
        JSONInputAdapter("memory://in/data.jsonl.gz"), CSVOutputAdapter("memory://out/data.csv.gz")
    ).run()
    assert_completed(report, read=1, written=1, errors=0)
    assert gzip.decompress(memfs.cat("/out/data.csv.gz")) == b"id,label\n1,a\n"


def test_memory_url_input_as_a_path_string(memfs):
    memfs.pipe("/in/data.jsonl", b'{"id": 1, "label": "a"}\n')
    out = MemoryOutputAdapter()
    report = Pipe("memory://in/data.jsonl", out).run()
    assert_completed(report, read=1, written=1, errors=0)
    assert out.records == [{"id": 1, "label": "a"}]


def test_memory_url_failure_publishes_nothing(memfs):
    data = gzip.compress(("id,label\n" + "".join(f"{i},{i * 7919 % 10007}\n" for i in range(20000))).encode())
    memfs.pipe("/in/data.csv.gz", data[: len(data) // 2])
    pipe = Pipe(CSVInputAdapter("memory://in/data.csv.gz"), JSONOutputAdapter("memory://out/data.jsonl"))
    with pytest.raises(PipelineError, match=r"memory://in/data.csv.gz.*truncated"):
        pipe.run()
    assert_counts_add_up(pipe.report)
    assert not memfs.exists("/out/data.jsonl")
    assert [p for p in memfs.find("/") if p.endswith(".tmp")] == []


def test_missing_memory_url(memfs):
    pipe = Pipe(CSVInputAdapter("memory://in/none.csv"), JSONOutputAdapter("memory://out/data.jsonl"))
    with pytest.raises(PipelineError, match=r"memory://in/none.csv"):
        pipe.run()
    assert_counts_add_up(pipe.report, read=0)
    assert not memfs.exists("/out/data.jsonl")
    assert [p for p in memfs.find("/") if p.endswith(".tmp")] == []


def test_tsv_suffix_means_tab_separated(tmp_path):
    from zoopipe_core import CSVInputAdapter, CSVOutputAdapter, MemoryOutputAdapter, Pipe

    source = tmp_path / "in.tsv"
    source.write_text("a\tb\n1,5\tx\n")
    out = MemoryOutputAdapter()
    Pipe(str(source), out).run()
    assert out.records == [{"a": "1,5", "b": "x"}]
    assert CSVInputAdapter("x.csv").delimiter == "," and CSVOutputAdapter("x.tsv.gz").delimiter == "\t"
    Pipe(str(source), str(tmp_path / "out.tsv")).run()
    assert (tmp_path / "out.tsv").read_text() == "a\tb\n1,5\tx\n"
