"""Parquet and Arrow IPC adapters: options, conversions with the other formats, fsspec URLs,
schema inference across batches and damaged inputs. pyarrow is the independent reader/writer."""

from __future__ import annotations

import json
import os

import fsspec
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from pydantic import BaseModel, Field

from tests.conftest import assert_completed, assert_counts_add_up
from zoopipe_core import (
    ArrowInputAdapter,
    ArrowOutputAdapter,
    CSVInputAdapter,
    JSONInputAdapter,
    JSONOutputAdapter,
    MemoryOutputAdapter,
    ParquetInputAdapter,
    ParquetOutputAdapter,
    Pipe,
    PipelineError,
    PyGeneratorInputAdapter,
)
from zoopipe_core.pipe.executors import SingleThreadExecutor


def numbers_table(n: int = 10) -> pa.Table:
    return pa.table(
        {"id": list(range(n)), "name": [f"u{i}" for i in range(n)], "score": [i / 2 for i in range(n)]}
    )


@pytest.fixture
def numbers(tmp_path):
    path = tmp_path / "numbers.parquet"
    pq.write_table(numbers_table(), path, row_group_size=4)
    return path


@pytest.mark.parametrize(
    "codec, parquet_name",
    [("snappy", "SNAPPY"), ("zstd", "ZSTD"), ("gzip", "GZIP"), ("lz4", "LZ4"), ("none", "UNCOMPRESSED")],
)
def test_codecs_and_row_group_size(numbers, tmp_path, codec, parquet_name):
    out = tmp_path / "out.parquet"
    report = Pipe(
        ParquetInputAdapter(numbers),
        ParquetOutputAdapter(out, compression=codec, row_group_size=3),
        executor=SingleThreadExecutor(batch_size=4),
    ).run()
    assert_completed(report, read=10, written=10)
    meta = pq.ParquetFile(out).metadata
    assert meta.row_group(0).column(0).compression == parquet_name
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [3, 3, 3, 1]
    assert pq.read_table(out).equals(numbers_table())


def test_unknown_codec_is_refused():
    with pytest.raises(ValueError, match="snappy"):
        ParquetOutputAdapter("x.parquet", compression="brotli")


def test_columns_skip_rows_and_limit_are_pushed_into_the_reader(numbers):
    out = MemoryOutputAdapter()
    assert_completed(
        Pipe(ParquetInputAdapter(numbers, columns=["name", "id"], skip_rows=3, limit=4), out).run(), read=4
    )
    assert out.records == [{"name": f"u{i}", "id": i} for i in range(3, 7)]
    with pytest.raises(
        PipelineError, match=r"column \"nope\" is not in the file.*numbers.parquet|numbers.parquet.*\"nope\""
    ):
        Pipe(ParquetInputAdapter(numbers, columns=["nope"]), MemoryOutputAdapter()).run()


def test_the_schema_reads_only_its_columns_by_alias(numbers):
    class Row(BaseModel):
        ident: int = Field(alias="id")

    out = MemoryOutputAdapter()
    assert_completed(Pipe(ParquetInputAdapter(numbers, limit=2), out, schema_model=Row).run(), written=2)
    assert out.records == [{"ident": 0}, {"ident": 1}]


def test_arrow_file_and_stream_options(numbers, tmp_path):
    for name, fmt in (("a.arrow", "file"), ("a.arrows", "stream"), ("a.feather", "file")):
        out = tmp_path / name
        assert ArrowOutputAdapter(out).format == fmt
        assert_completed(Pipe(ParquetInputAdapter(numbers), ArrowOutputAdapter(out)).run(), written=10)
        got = MemoryOutputAdapter()
        assert_completed(Pipe(ArrowInputAdapter(out, columns=["id"], skip_rows=8), got).run(), read=2)
        assert got.records == [{"id": 8}, {"id": 9}]
    with pytest.raises(ValueError, match="stream"):
        ArrowOutputAdapter("x.arrow", format="zip")


def test_csv_to_parquet_and_parquet_to_jsonl_in_rust(tmp_path):
    csv_path = tmp_path / "in.csv"
    csv_path.write_text('id,name\n1,Ada\n2,\n3,""\n')
    out = tmp_path / "out.parquet"
    assert_completed(Pipe(CSVInputAdapter(csv_path), ParquetOutputAdapter(out)).run(), written=3)
    # An empty unquoted field is a null, a quoted "" an empty string (docs/adapters.md, Nulls).
    expected = [{"id": "1", "name": "Ada"}, {"id": "2", "name": None}, {"id": "3", "name": ""}]
    assert pq.read_table(out).to_pylist() == expected
    jsonl = tmp_path / "out.jsonl"
    assert_completed(Pipe(ParquetInputAdapter(out), JSONOutputAdapter(jsonl)).run(), written=3)
    assert [json.loads(line) for line in jsonl.read_text().splitlines()] == expected
    back = tmp_path / "back.parquet"
    assert_completed(Pipe(JSONInputAdapter(jsonl), ParquetOutputAdapter(back)).run(), written=3)
    assert pq.read_table(back).equals(pq.read_table(out))


def test_fsspec_urls_for_reading_and_writing(numbers):
    fs = fsspec.filesystem("memory")
    fs.pipe("/pa/in.parquet", numbers.read_bytes())
    assert_completed(
        Pipe(
            ParquetInputAdapter("memory://pa/in.parquet"), ArrowOutputAdapter("memory://pa/out.arrow")
        ).run(),
        written=10,
    )
    assert_completed(
        Pipe(
            ArrowInputAdapter("memory://pa/out.arrow"), ParquetOutputAdapter("memory://pa/out.parquet")
        ).run(),
        written=10,
    )
    with fs.open("/pa/out.parquet", "rb") as f:
        assert pq.read_table(f).equals(numbers_table())
    assert sorted(os.path.basename(p) for p in fs.ls("/pa", detail=False)) == [
        "in.parquet",
        "out.arrow",
        "out.parquet",
    ]


def test_a_column_null_in_the_first_batches_takes_the_later_type(tmp_path):
    records = [{"n": i, "s": None} for i in range(5)] + [{"n": 5, "s": "x"}]
    out = tmp_path / "out.parquet"
    report = Pipe(
        PyGeneratorInputAdapter(records),
        ParquetOutputAdapter(out),
        executor=SingleThreadExecutor(batch_size=2),
    ).run()
    assert_completed(report, written=6)
    table = pq.read_table(out)
    assert table.schema.field("s").type == pa.string()
    assert table.to_pylist() == records


def test_int_then_float_in_one_batch_is_promoted(tmp_path):
    out = tmp_path / "out.parquet"
    assert_completed(Pipe(PyGeneratorInputAdapter([{"x": 1}, {"x": 2.5}]), ParquetOutputAdapter(out)).run())
    assert pq.read_table(out).to_pylist() == [{"x": 1.0}, {"x": 2.5}]


def test_a_type_change_after_the_file_started_fails_and_publishes_nothing(tmp_path):
    out = tmp_path / "out.parquet"
    records = [{"x": 1}, {"x": 2}, {"x": "three"}]
    with pytest.raises(PipelineError, match=r'column "x" holds Int64 .* Utf8'):
        Pipe(
            PyGeneratorInputAdapter(records),
            ParquetOutputAdapter(out, row_group_size=1),
            executor=SingleThreadExecutor(batch_size=1),
        ).run()
    assert os.listdir(tmp_path) == []


def test_a_value_that_does_not_fit_its_column_is_a_serialize_error(numbers, tmp_path):
    def spoil(records):
        return [{**r, "id": "seven"} if r["id"] == 7 else r for r in records]

    out, errors = tmp_path / "out.parquet", tmp_path / "errors.jsonl"
    report = Pipe(
        ParquetInputAdapter(numbers),
        ParquetOutputAdapter(out),
        error_output_adapter=JSONOutputAdapter(errors),
        pre_validation=[spoil],
    ).run()
    assert_completed(report, read=10, written=9, errors=1)
    error = json.loads(errors.read_text())
    assert error["stage"] == "serialize" and error["line"] == 8
    assert 'column "id"' in error["errors"][0] and "Int64" in error["errors"][0]
    assert error["record"] == {"id": 7, "name": "u7", "score": 3.5}
    assert pq.read_table(out).column("id").to_pylist() == [0, 1, 2, 3, 4, 5, 6, 8, 9]


def test_a_corrupt_footer_names_the_file(numbers, tmp_path):
    broken = tmp_path / "broken.parquet"
    data = numbers.read_bytes()
    broken.write_bytes(data[:-12] + b"garbage!PAR1")
    out = tmp_path / "out.jsonl"
    with pytest.raises(PipelineError, match=r"broken.parquet.*Parquet"):
        Pipe(ParquetInputAdapter(broken), JSONOutputAdapter(out)).run()
    assert not out.exists()


def test_a_damaged_row_group_names_the_file_and_row_group(tmp_path):
    path = tmp_path / "damaged.parquet"
    pq.write_table(
        pa.table({"s": [f"value-{i}" for i in range(100)]}),
        path,
        row_group_size=50,
        compression="none",
        use_dictionary=False,
    )
    data = bytearray(path.read_bytes())
    meta = pq.ParquetFile(path).metadata.row_group(1).column(0)
    start = meta.data_page_offset
    data[start + 30 : start + 200] = b"\xff" * 170
    path.write_bytes(bytes(data))
    with pytest.raises(PipelineError, match=r"damaged.parquet"):
        Pipe(ParquetInputAdapter(path), JSONOutputAdapter(tmp_path / "out.jsonl")).run()
    assert not (tmp_path / "out.jsonl").exists()


def test_a_truncated_arrow_stream_names_the_file_and_batch(numbers, tmp_path):
    stream = tmp_path / "in.arrows"
    with pa.ipc.new_stream(stream, numbers_table().schema) as writer:
        for batch in numbers_table().to_batches(max_chunksize=3):
            writer.write_batch(batch)
    data = stream.read_bytes()
    stream.write_bytes(data[: len(data) - 100])
    with pytest.raises(PipelineError, match=r"in.arrows.*record batch \d"):
        Pipe(ArrowInputAdapter(stream), JSONOutputAdapter(tmp_path / "out.jsonl")).run()
    truncated_file = tmp_path / "cut.arrow"
    feather.write_feather(numbers_table(), tmp_path / "whole.arrow")
    truncated_file.write_bytes((tmp_path / "whole.arrow").read_bytes()[:200])
    with pytest.raises(PipelineError, match=r"cut.arrow"):
        Pipe(ArrowInputAdapter(truncated_file), JSONOutputAdapter(tmp_path / "out.jsonl")).run()
    assert not (tmp_path / "out.jsonl").exists()


def test_a_parquet_error_output_is_refused(numbers, tmp_path):
    with pytest.raises(PipelineError, match="error output cannot be parquet"):
        Pipe(
            ParquetInputAdapter(numbers),
            JSONOutputAdapter(tmp_path / "o.jsonl"),
            error_output_adapter=ParquetOutputAdapter(tmp_path / "e.parquet"),
        ).run()


def test_registered_by_name_and_suffix():
    from zoopipe_core.plugins import adapter_for_path

    assert adapter_for_path("x.parquet", "input").__name__ == "ParquetInputAdapter"
    assert adapter_for_path("x.pq", "output").__name__ == "ParquetOutputAdapter"
    assert adapter_for_path("x.feather", "input").__name__ == "ArrowInputAdapter"
    assert adapter_for_path("x.arrows", "output").__name__ == "ArrowOutputAdapter"


def test_batches_whose_records_all_failed_do_not_shape_the_file(tmp_path):
    def spoil(records):
        if any(r["n"] < 3 for r in records):
            raise ValueError("the whole batch fails")
        return records

    out = tmp_path / "out.parquet"
    records = [{"n": i} for i in range(5)]
    report = Pipe(
        PyGeneratorInputAdapter(records),
        ParquetOutputAdapter(out),
        pre_validation=[spoil],
        executor=SingleThreadExecutor(batch_size=3),
    ).run()
    assert_counts_add_up(report, read=5, written=2, errors=3)
    assert pq.read_table(out).to_pylist() == [{"n": 3}, {"n": 4}]
    empty = tmp_path / "empty.parquet"
    assert_completed(Pipe(PyGeneratorInputAdapter([]), ParquetOutputAdapter(empty)).run(), read=0)
    assert pq.read_table(empty).num_rows == 0
