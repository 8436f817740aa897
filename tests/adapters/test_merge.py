"""Merging shard outputs: one valid file per format, streamed, published atomically."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from zoopipe_core import CSVOutputAdapter, JSONOutputAdapter, ShardingError
from zoopipe_core.adapters import merge
from zoopipe_core.adapters.base import OutputAdapter
from zoopipe_core.adapters.native_spec import ArrowSink, JsonArraySink, ParquetSink


class FileOutput(OutputAdapter):
    """An output of a given native kind, standing for any file adapter of that format (an
    unknown kind has no native spec)."""

    SPECS: ClassVar[dict[str, type[JsonArraySink | ParquetSink | ArrowSink]]] = {
        "json": JsonArraySink,
        "parquet": ParquetSink,
        "arrow": ArrowSink,
    }

    def __init__(self, path: Any, kind: str) -> None:
        self.path, self.kind = str(path), kind

    def native_spec(self) -> JsonArraySink | ParquetSink | ArrowSink | None:
        spec_class = self.SPECS.get(self.kind)
        return spec_class(url=self.path, name=self.path) if spec_class else None

    @property
    def merge_format(self) -> str:
        return self.kind


def shards(target: OutputAdapter, count: int) -> list[OutputAdapter]:
    return [target.shard(i) for i in range(count)]


def leftovers(directory: Path) -> list[str]:
    return sorted(n for n in (p.name for p in directory.iterdir()) if ".part-" in n or n.endswith(".tmp"))


def test_csv_parts_merge_under_one_header(tmp_path: Path) -> None:
    target = CSVOutputAdapter(tmp_path / "out.csv")
    parts = shards(target, 3)
    Path(parts[0].path).write_text("a,b\n1,x\n2,y\n")
    Path(parts[1].path).write_text("")  # a shard that wrote nothing
    Path(parts[2].path).write_text('a,b\n3,"multi\nline"\n')
    target.merge_parts(parts)
    assert (tmp_path / "out.csv").read_text() == 'a,b\n1,x\n2,y\n3,"multi\nline"\n'
    assert leftovers(tmp_path) == []


def test_csv_parts_with_different_headers_are_not_merged(tmp_path: Path) -> None:
    target = CSVOutputAdapter(tmp_path / "out.csv")
    parts = shards(target, 2)
    Path(parts[0].path).write_text("a,b\n1,2\n")
    Path(parts[1].path).write_text("b,a\n2,1\n")
    with pytest.raises(ShardingError, match="field_names"):
        target.merge_parts(parts)
    assert not (tmp_path / "out.csv").exists()
    assert leftovers(tmp_path) == ["out.part-00000.csv", "out.part-00001.csv"], "parts stay for inspection"


def test_headerless_csv_parts_concatenate(tmp_path: Path) -> None:
    target = CSVOutputAdapter(tmp_path / "out.csv", header=False)
    parts = shards(target, 2)
    Path(parts[0].path).write_text("1,x\n")
    Path(parts[1].path).write_text("2,y\n")
    target.merge_parts(parts)
    assert (tmp_path / "out.csv").read_text() == "1,x\n2,y\n"
    assert leftovers(tmp_path) == []


def test_a_local_merge_that_fails_puts_the_first_part_back(tmp_path: Path) -> None:
    """The first part is moved into place, not copied: a failed append must restore it."""
    target = JSONOutputAdapter(tmp_path / "out.jsonl")
    parts = shards(target, 3)
    Path(parts[0].path).write_bytes(b'{"n":0}\n')
    Path(parts[1].path).write_bytes(b'{"n":1}\n')
    Path(parts[2].path).mkdir()  # exists, but cannot be read as a file
    with pytest.raises(IsADirectoryError):
        target.merge_parts(parts)
    assert not (tmp_path / "out.jsonl").exists()
    assert Path(parts[0].path).read_bytes() == b'{"n":0}\n'
    assert Path(parts[1].path).read_bytes() == b'{"n":1}\n'
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_gzip_csv_parts_merge(tmp_path: Path) -> None:
    target = CSVOutputAdapter(tmp_path / "out.csv.gz")
    parts = shards(target, 2)
    for i, part in enumerate(parts):
        Path(part.path).write_bytes(gzip.compress(f"n\n{i}\n".encode()))
    target.merge_parts(parts)
    assert gzip.decompress((tmp_path / "out.csv.gz").read_bytes()) == b"n\n0\n1\n"


def test_jsonl_parts_concatenate_also_gzip(tmp_path: Path) -> None:
    for name, encode, decode in [
        ("out.jsonl", lambda b: b, lambda b: b),
        ("out.jsonl.gz", gzip.compress, gzip.decompress),
    ]:
        target = JSONOutputAdapter(tmp_path / name)
        parts = shards(target, 3)
        for i, part in enumerate(parts):
            Path(part.path).write_bytes(encode(f'{{"n":{i}}}\n'.encode() if i != 1 else b""))
        target.merge_parts(parts)
        assert decode((tmp_path / name).read_bytes()) == b'{"n":0}\n{"n":2}\n'
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1 << 20])
def test_json_array_parts_merge_into_one_array(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(merge, "CHUNK", chunk)
    target = FileOutput(tmp_path / "out.json", "json")
    parts = shards(target, 5)
    texts = ['[{"a":[1,[2]]},\n {"b":"]"}]\n', "[]", "  [ ]  \n", "[[[]]]", '[\n  "x" \n]']
    for part, text in zip(parts, texts, strict=False):
        Path(part.path).write_text(text)
    target.merge_parts(parts)
    merged = json.loads((tmp_path / "out.json").read_text())
    assert merged == [{"a": [1, [2]]}, {"b": "]"}, [[]], "x"]
    assert leftovers(tmp_path) == []


def test_a_broken_json_array_part_is_refused(tmp_path: Path) -> None:
    target = FileOutput(tmp_path / "out.json", "json")
    parts = shards(target, 2)
    Path(parts[0].path).write_text("[1]")
    Path(parts[1].path).write_text("[2")
    with pytest.raises(ShardingError, match="not a complete JSON array"):
        target.merge_parts(parts)
    assert not (tmp_path / "out.json").exists() and leftovers(tmp_path) == [
        p.name for p in map(Path, (parts[0].path, parts[1].path))
    ]


def test_parquet_parts_merge_row_group_by_row_group(tmp_path: Path) -> None:
    target = FileOutput(tmp_path / "out.parquet", "parquet")
    parts = shards(target, 3)
    for i, part in enumerate(parts):
        table = pa.table({"n": list(range(i * 10, i * 10 + 10)), "s": [f"v{i}"] * 10})
        pq.write_table(table, part.path, row_group_size=4)
    target.merge_parts(parts)
    merged = pq.ParquetFile(tmp_path / "out.parquet")
    assert merged.read().column("n").to_pylist() == list(range(30))
    assert merged.num_row_groups == 9, "row groups are copied one by one, never the whole part"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("file_format", [True, False])
def test_arrow_parts_merge_batch_by_batch(tmp_path: Path, file_format: bool) -> None:
    target = FileOutput(tmp_path / "out.arrow", "arrow")
    parts = shards(target, 2)
    schema = pa.schema([("n", pa.int64())])
    for i, part in enumerate(parts):
        with (ipc.new_file if file_format else ipc.new_stream)(part.path, schema) as writer:
            for b in range(2):
                writer.write_batch(pa.record_batch([pa.array([i * 10 + b])], schema=schema))
    target.merge_parts(parts)
    with open(tmp_path / "out.arrow", "rb") as f:
        reader = ipc.open_file(f) if file_format else ipc.open_stream(f)
        table = reader.read_all()
    assert table.column("n").to_pylist() == [0, 1, 10, 11]
    assert leftovers(tmp_path) == []


def test_missing_parts_are_an_error(tmp_path: Path) -> None:
    target = JSONOutputAdapter(tmp_path / "out.jsonl")
    parts = shards(target, 2)
    Path(parts[0].path).write_text("{}\n")
    with pytest.raises(ShardingError, match="missing"):
        target.merge_parts(parts)
    assert not (tmp_path / "out.jsonl").exists()


def test_unknown_formats_cannot_merge(tmp_path: Path) -> None:
    with pytest.raises(ShardingError, match="cannot merge its shards"):
        merge.check_mergeable(FileOutput(tmp_path / "out.xml", "xml"))


def test_merging_on_an_fsspec_filesystem(memfs: Any) -> None:
    target = JSONOutputAdapter("memory://bucket/out.jsonl")
    parts = shards(target, 2)
    assert parts[1].path == "memory://bucket/out.part-00001.jsonl"
    for i, part in enumerate(parts):
        with memfs.open(part.path[len("memory://") :], "wb") as f:
            f.write(f'{{"n":{i}}}\n'.encode())
    target.merge_parts(parts)
    assert memfs.cat("/bucket/out.jsonl") == b'{"n":0}\n{"n":1}\n'
    assert not memfs.exists("/bucket/out.part-00000.jsonl")


def test_a_parallel_run_merges_json_arrays_and_arrow_end_to_end(tmp_path: Path) -> None:
    from zoopipe_core import ArrowOutputAdapter, JSONInputAdapter, Pipe, PipeManager
    from zoopipe_core.engines import MultiProcessEngine
    from zoopipe_core.testing import write_users

    files = [write_users(tmp_path / f"u{i}.jsonl", i * 30, 30) for i in range(3)]
    for target in (JSONOutputAdapter(tmp_path / "out.json"), ArrowOutputAdapter(tmp_path / "out.arrow")):
        PipeManager.parallelize_pipe(
            Pipe(JSONInputAdapter(files), target),
            workers=2,
            should_merge=True,
            engine=MultiProcessEngine(max_workers=2),
        ).run(show_progress=False)
    assert [r["user_id"] for r in json.loads((tmp_path / "out.json").read_text())] == list(range(90))
    with open(tmp_path / "out.arrow", "rb") as f:
        assert ipc.open_file(f).read_all().column("user_id").to_pylist() == list(range(90))
    assert leftovers(tmp_path) == []


def test_a_format_provides_its_merger_through_register_merger(tmp_path: Path) -> None:
    """A plugin's file format takes part in should_merge=True without the generic code naming it."""

    def merge_lines(target: Any, paths: list[str]) -> None:
        merge.publish(target.path, lambda out: [out.write(Path(p).read_bytes().upper()) for p in paths])

    checked: list[str] = []
    merger = merge.FormatMerger(merge_lines, check=lambda target: checked.append(target.path))
    merge.register_merger("test-lines", merger)
    target = FileOutput(tmp_path / "out.lines", "test-lines")
    merge.check_mergeable(target)
    assert checked == [target.path]
    parts = shards(target, 2)
    Path(parts[0].path).write_text("a\n")
    Path(parts[1].path).write_text("b\n")
    target.merge_parts(parts)
    assert (tmp_path / "out.lines").read_text() == "A\nB\n"
    assert leftovers(tmp_path) == []


def test_a_format_module_not_yet_imported_is_found_by_its_adapter_name() -> None:
    """The merger of a native kind lives in its format's module, found as the output adapter
    registered under that name: nothing lists every format, and nothing needs importing first."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from zoopipe_core.adapters import merge\n"
        "assert 'zoopipe_core.adapters.parquet' not in sys.modules\n"
        "print(merge.format_merger('parquet').merge.__module__, merge.format_merger('xml'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["zoopipe_core.adapters.parquet", "None"]
