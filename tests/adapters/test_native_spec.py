"""The typed native boundary: adapters describe themselves with the typed specs of
zoopipe_core.adapters.native_spec, whose dicts the Rust executor parses key by key (a bad one is
refused naming the kind and the key)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from zoopipe_core import (
    ArrowInputAdapter,
    ArrowOutputAdapter,
    CountOutputAdapter,
    CSVInputAdapter,
    CSVOutputAdapter,
    JSONInputAdapter,
    JSONOutputAdapter,
    MemoryOutputAdapter,
    ParquetInputAdapter,
    ParquetOutputAdapter,
    Pipe,
    PipelineError,
    PyGeneratorInputAdapter,
)
from zoopipe_core.adapters.native_spec import (
    CsvSource,
    FileSpec,
    Location,
    ParquetSink,
    PythonSink,
    PythonSource,
    ReadSpec,
)
from zoopipe_core.pipe.arrow_schema import with_model_schema
from zoopipe_core.pipe.runner import _native

READ = {"columns": None, "skip_rows": 0, "limit": None, "byte_range": None, "line_offset": 0}


def native(adapter: Any) -> dict[str, Any]:
    """The dict the runner hands to Rust for ``adapter``, its file at the local path ``at``."""
    spec = adapter.native_spec()
    assert isinstance(spec, FileSpec)
    return spec.located(Location(path="at")).to_native()


def test_every_native_adapter_describes_itself_with_a_typed_spec() -> None:
    csv_in = CSVInputAdapter("in.tsv.gz", skip_rows=2, null_values=["NA"], byte_range=None)
    assert native(csv_in) == {
        "kind": "csv",
        "name": "in.tsv.gz",
        "compression": "gzip",
        "delimiter": "\t",
        "quotechar": '"',
        "has_header": True,
        "field_names": None,
        "null_values": ["NA"],
        "not_null_columns": [],
        **READ,
        "skip_rows": 2,
        "ends_at_cut": False,
        "path": "at",
    }
    assert native(CSVOutputAdapter("o.csv", header=False, field_names=["a"])) == {
        "kind": "csv",
        "name": "o.csv",
        "compression": "none",
        "delimiter": ",",
        "quotechar": '"',
        "header": False,
        "field_names": ["a"],
        "path": "at",
    }
    shard = JSONInputAdapter("in.jsonl", byte_range=(3, 9), line_offset=1)
    assert native(shard) == {
        "kind": "jsonl",
        "name": "in.jsonl",
        "compression": "none",
        **READ,
        "byte_range": (3, 9),
        "line_offset": 1,
        "path": "at",
    }
    assert native(JSONInputAdapter("in.json", limit=4))["kind"] == "json"
    assert native(JSONOutputAdapter("o.json", indent=2)) == {
        "kind": "json",
        "name": "o.json",
        "compression": "none",
        "indent": 2,
        "path": "at",
    }
    assert native(JSONOutputAdapter("o.jsonl.zst"))["compression"] == "zstd"
    assert native(ParquetInputAdapter("t.parquet", columns=["id"])) == {
        "kind": "parquet",
        "name": "t.parquet",
        "compression": "none",
        **READ,
        "columns": ["id"],
        "path": "at",
    }
    assert native(ParquetOutputAdapter("o.parquet", compression="zstd", row_group_size=10)) == {
        "kind": "parquet",
        "name": "o.parquet",
        "compression": "none",
        "schema": None,
        "codec": "zstd",
        "row_group_size": 10,
        "path": "at",
    }
    assert native(ArrowInputAdapter("t.arrow"))["kind"] == "arrow"
    assert native(ArrowOutputAdapter("o.arrows"))["format"] == "stream"
    assert CountOutputAdapter().native_spec().to_native() == {"kind": "count", "name": "count"}
    assert MemoryOutputAdapter().native_spec() is None


def test_specs_are_edited_by_copy_and_only_where_they_apply() -> None:
    spec = CsvSource(url="a.csv", name="a.csv", read=ReadSpec(limit=1))
    assert spec.with_not_null_columns(["id"]).not_null_columns == ["id"] and spec.not_null_columns == []
    with pytest.raises(ValueError, match="open the spec's url first"):
        spec.to_native()
    with pytest.raises(ValueError, match="exactly one"):
        Location()
    from pydantic import BaseModel

    class Row(BaseModel):
        n: int

    def schema(spec: ParquetSink, has_post_transforms: bool) -> str | None:
        given = with_model_schema(spec, Row, has_post_transforms)
        assert isinstance(given, ParquetSink)
        return given.schema

    table = ParquetSink(url="o.parquet", name="o.parquet")
    assert schema(table, False) == '[{"name": "n", "type": "int64", "nullable": false}]'
    assert schema(table, True) is None, "post-validation transforms may reshape the records"
    assert schema(table.with_schema("[]"), False) == "[]", "an output's own schema stands"
    writer = PythonSink(name="w", writer=object())
    assert with_model_schema(writer, Row, False) is writer


def run(
    source: dict[str, Any], output: dict[str, Any], errors: dict[str, Any] | None = None
) -> dict[str, Any]:
    return _native.run_pipe(
        source, output, errors, None, 100, 1, _native.NativeProgress(), _native.StopToken()
    )


def test_the_executor_parses_the_dicts_of_the_typed_specs(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("a,b\n1,\n2,x\n")
    source = CsvSource(url=str(path), name="in.csv").with_not_null_columns(["b"])
    out = io.BytesIO()
    sink = {"kind": "jsonl", "file": out, "name": "out"}
    summary = run(source.located(Location(path=str(path))).to_native(), sink)
    assert (summary["read"], summary["success"]) == (2, 2)
    assert out.getvalue() == b'{"a":"1","b":""}\n{"a":"2","b":"x"}\n'
    batches = iter([[{"n": 1}], [{"n": 2}]])
    summary = run(PythonSource(name="gen", batches=batches).to_native(), {"kind": "count"})
    assert summary["read"] == 2


@pytest.mark.parametrize(
    ("source", "output", "message"),
    [
        ({"kind": "xml", "path": "f"}, {"kind": "count"}, 'unknown native source kind "xml"'),
        ({"kind": "python", "batches": iter([])}, {"kind": "tsv"}, 'unknown native output kind "tsv"'),
        ({"path": "f"}, {"kind": "count"}, 'the source spec\'s "kind" is missing'),
        (
            {"kind": "csv", "path": "f", "has_header": "yes"},
            {"kind": "count"},
            'the csv source spec\'s "has_header" must be a boolean, got a string',
        ),
        (
            {"kind": "jsonl", "path": "f", "limit": -2},
            {"kind": "count"},
            'the jsonl source spec\'s "limit" must be >= 0',
        ),
        (
            {"kind": "parquet"},
            {"kind": "count"},
            'the parquet source spec\'s "file" is missing: give a path or a file',
        ),
        (
            {"kind": "python", "batches": iter([])},
            {"kind": "csv", "path": 3},
            'the csv output spec\'s "path" must be a string, got an integer',
        ),
        (
            {"kind": "python", "batches": iter([])},
            {"kind": "arrow", "path": "o", "format": "feather"},
            'the arrow output spec\'s "format": unknown Arrow format "feather"',
        ),
    ],
)
def test_a_bad_spec_is_refused_naming_its_kind_and_key(
    source: dict[str, Any], output: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError) as refused:
        run(source, output)
    assert message in str(refused.value)


def test_an_error_output_cannot_be_a_table(tmp_path: Path) -> None:
    batches = iter([[{"n": 1}]])
    with pytest.raises(ValueError, match="an error output cannot be parquet"):
        run(
            {"kind": "python", "batches": batches},
            {"kind": "count"},
            {"kind": "parquet", "path": str(tmp_path)},
        )


def test_python_adapters_run_as_python_specs() -> None:
    out = MemoryOutputAdapter()
    report = Pipe(PyGeneratorInputAdapter([{"a": 1}]), out).run()
    assert report.success_count == 1 and out.records == [{"a": 1}]


def test_a_native_spec_that_is_not_typed_is_refused_saying_what_to_return(tmp_path: Path) -> None:
    class DictOutput(JSONOutputAdapter):
        def native_spec(self) -> Any:
            return {"kind": "jsonl", "url": self.path}

    with pytest.raises(PipelineError, match=r"DictOutput.native_spec\(\) returned a dict; return a spec"):
        Pipe(PyGeneratorInputAdapter([{"a": 1}]), DictOutput(str(tmp_path / "o.jsonl"))).run()


def test_the_specs_are_public_names_of_the_adapters_package() -> None:
    import zoopipe_core.adapters as adapters

    assert adapters.CsvSource is CsvSource and adapters.SinkSpec is not None
