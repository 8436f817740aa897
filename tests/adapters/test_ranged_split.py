"""CSV and JSON Lines files on a URL (memory://) split into byte ranges from small windows (issue
16): every record read exactly once and in order for any number of workers, the driver reads a
few KiB per cut, each worker reads only its range, and a wrong cut fails its shard clearly."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from zoopipe_core import CSVInputAdapter, JSONInputAdapter, MemoryOutputAdapter, Pipe
from zoopipe_core.adapters import ranged, ranged_split
from zoopipe_core.adapters.ranged import DRIVER_READS, RangeReader
from zoopipe_core.adapters.ranged_split import plan_ranges
from zoopipe_core.errors import PipelineError, ShardingError


def tricky_csv(rows: int, newline: str = "\r\n", header: bool = True) -> tuple[str, list[dict]]:
    """CSV whose quoted fields hold newlines, delimiters and doubled quotes, long enough that
    most cut targets fall inside one; and the records it holds."""
    text = "id,text,n" + newline if header else ""
    records = []
    for i in range(rows):
        value = [
            f'two{newline}lines, "quoted" {i}',
            "plain",
            f"a,b\nc\n\nd {'x' * (i % 50)}",
            '"',
            "",
        ][i % 5]
        cell = value if value == "plain" else '"' + value.replace('"', '""') + '"'
        text += f"{i},{cell},{i % 7}{newline}"
        records.append({"id": str(i), "text": value, "n": str(i % 7)})
    return text, records


def read(adapter) -> list[dict]:
    out = MemoryOutputAdapter()
    report = Pipe(adapter, out).run()
    assert report.error_count == 0, report
    return out.records


def read_shards(shards) -> list[dict]:
    return [record for shard in shards for record in read(shard)]


@pytest.mark.parametrize("newline", ["\r\n", "\n"])
def test_csv_shards_on_a_url_hold_every_record_once_in_order(memfs, newline: str) -> None:
    text, records = tricky_csv(400, newline)
    memfs.pipe("/data/tricky.csv", text.encode())
    url = "memory://data/tricky.csv"
    assert read(CSVInputAdapter(url)) == records
    for workers in range(1, 11):
        shards = CSVInputAdapter(url).split(workers)
        assert len(shards) == workers, "a 30 KB file has a cut for every worker"
        assert read_shards(shards) == records, f"workers={workers}"


def test_headerless_csv_and_column_projection_on_url_shards(memfs) -> None:
    text, records = tricky_csv(200, header=False)
    memfs.pipe("/data/headless.csv", text.encode())
    names = ["id", "text", "n"]
    shards = CSVInputAdapter("memory://data/headless.csv", has_header=False, field_names=names).split(6)
    assert len(shards) == 6 and read_shards(shards) == records
    shards = CSVInputAdapter(
        "memory://data/headless.csv", has_header=False, field_names=names, columns=["n"]
    ).split(4)
    assert read_shards(shards) == [{"n": r["n"]} for r in records]


def test_json_lines_shards_on_a_url(memfs) -> None:
    lines = [json.dumps({"i": i, "s": "x\n" * (i % 9)}) for i in range(500)]
    memfs.pipe("/data/rows.jsonl", ("\n".join(lines) + "\n\n").encode())
    for workers in range(1, 11):
        shards = JSONInputAdapter("memory://data/rows.jsonl").split(workers)
        assert [r["i"] for r in read_shards(shards)] == list(range(500)), f"workers={workers}"


def test_the_driver_reads_a_few_kib_per_cut(memfs) -> None:
    text, _ = tricky_csv(20_000)
    memfs.pipe("/data/big.csv", text.encode())
    DRIVER_READS.reset()
    plan = plan_ranges("memory://data/big.csv", "csv", 10)
    assert len(plan.ranges) == 10
    assert DRIVER_READS.bytes <= 4096 + 9 * 8192, DRIVER_READS
    assert DRIVER_READS.requests == 10, "the header's window and one window per cut"
    memfs.pipe("/data/big.jsonl", "".join(json.dumps({"i": i}) + "\n" for i in range(50_000)).encode())
    DRIVER_READS.reset()
    assert len(plan_ranges("memory://data/big.jsonl", "jsonl", 10).ranges) == 10
    assert DRIVER_READS.bytes <= 4 + 9 * 4096, DRIVER_READS


class Counting:
    """Records the byte ranges a RangeReader asks its filesystem for."""

    def __init__(self, fs) -> None:
        self.fs, self.ranges = fs, []

    def cat_file(self, path, start, end):
        self.ranges.append((start, end))
        return self.fs.cat_file(path, start=start, end=end)


def test_a_range_reader_requests_only_its_range(memfs, monkeypatch) -> None:
    data = bytes(range(256)) * 100
    memfs.pipe("/data/blob", data)
    counting = Counting(memfs)
    monkeypatch.setattr(ranged, "filesystem_for", lambda url: (counting, "/data/blob"))
    DRIVER_READS.reset()
    with RangeReader("memory://data/blob", 1000, 9000, block_size=3000, prefetch=2) as reader:
        assert reader.read(10) == data[1000:1010]
        got = bytearray(reader.read(10))
        buffer = bytearray(700)
        while count := reader.readinto(buffer):
            got += buffer[:count]
    assert bytes(got) == data[1010:9000]
    assert counting.ranges == [(1000, 4000), (4000, 7000), (7000, 9000)]
    assert DRIVER_READS.bytes == 0, "a worker's reads are not the driver's"
    past_the_end = RangeReader("memory://data/blob", 25_000, 26_000)
    with pytest.raises(OSError, match="shorter than when the run was planned"), past_the_end:
        past_the_end.read()


def test_url_shards_read_through_range_readers_name_their_range(memfs) -> None:
    text = "id,n\n" + "".join(f"{i},{'x' if i == 150 else i}\n" for i in range(200))
    memfs.pipe("/data/lines.csv", text.encode())

    class Number(BaseModel):
        id: int
        n: int

    errors = []
    shards = CSVInputAdapter("memory://data/lines.csv").split(3)
    for shard in shards:
        sink = MemoryOutputAdapter()
        Pipe(shard, MemoryOutputAdapter(), error_output_adapter=sink, schema_model=Number).run()
        errors += [(e["source"], e["line"]) for e in sink.records]
    [(source, line)] = errors
    start, end = next(
        s.byte_range for s in shards if s.byte_range[0] <= text.index("150,x") < s.byte_range[1]
    )
    assert source == f"memory://data/lines.csv [bytes {start}..{end}]"
    assert text[start:].splitlines()[line - 1] == "150,x", "lines count from the start of the range"
    first = MemoryOutputAdapter()
    bad = "id,n\n1,x\n" + "".join(f"{i},{i}\n" for i in range(2, 400))
    memfs.pipe("/data/first.csv", bad.encode())
    shard = CSVInputAdapter("memory://data/first.csv").split(2)[0]
    Pipe(shard, MemoryOutputAdapter(), error_output_adapter=first, schema_model=Number).run()
    assert [(e["source"], e["line"]) for e in first.records] == [("memory://data/first.csv", 2)]


def test_a_wrong_cut_fails_its_shard_naming_the_url_and_offset(memfs) -> None:
    text = 'id,text\n1,"a\nb\nc"\n2,x\n'
    memfs.pipe("/data/cut.csv", text.encode())
    shard = CSVInputAdapter("memory://data/cut.csv", has_header=False, field_names=["id", "text"])
    cut = text.index("b")  # inside the quoted field: what a wrong speculative cut would give
    shard.byte_range, shard.ends_at_cut = (8, cut), True
    with pytest.raises(PipelineError) as failed:
        Pipe(shard, MemoryOutputAdapter()).run()
    message = str(failed.value)
    assert "memory://data/cut.csv" in message and f"ends at byte {cut}" in message
    assert "fewer workers" in message


def test_what_cannot_be_split_on_a_url(memfs) -> None:
    memfs.pipe("/data/rows.jsonl.gz", b"\x1f\x8b\x08\x00")
    with pytest.raises(ShardingError, match="compressed"):
        JSONInputAdapter("memory://data/rows.jsonl.gz").split(2)
    memfs.pipe("/data/hidden-gzip.csv", b"\x1f\x8b\x08\x00" + b"x" * 100)
    with pytest.raises(ShardingError, match=r"gzip-compressed \(by its first bytes\)"):
        CSVInputAdapter("memory://data/hidden-gzip.csv").split(2)
    memfs.pipe("/data/rows.json", b'[{"a": 1}]')
    with pytest.raises(ShardingError, match="one JSON array"):
        JSONInputAdapter("memory://data/rows.json").split(2)
    with pytest.raises(
        ShardingError, match=re.escape("cannot split memory://data/missing.csv: no such file")
    ):
        CSVInputAdapter("memory://data/missing.csv").split(2)


def test_a_glob_of_url_files_splits_its_large_files(memfs) -> None:
    big, big_records = tricky_csv(600)
    memfs.pipe("/glob/a-big.csv", big.encode())
    memfs.pipe("/glob/b-small.csv", b"id,text,n\n9999,tiny,0\n")
    shards = CSVInputAdapter("memory://glob/*.csv").split(4)
    names = [s.path.rsplit("/", 1)[1] for s in shards]
    assert names[-1] == "b-small.csv" and names.count("a-big.csv") >= 3, names
    assert all(s.byte_range is not None for s in shards[:-1]), "the big URL file is cut into ranges"
    assert read_shards(shards) == [*big_records, {"id": "9999", "text": "tiny", "n": "0"}]


QUOTED = st.text(alphabet=st.sampled_from(list('ab,"\n\r x')), max_size=8)


@st.composite
def quoted_csv(draw) -> tuple[str, list[dict]]:
    """A CSV of two columns whose fields are often quoted and hold line ends and quotes."""
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text, records = "a,b" + newline, []
    for a, b in draw(st.lists(st.tuples(QUOTED, QUOTED), min_size=1, max_size=30)):
        cells = ['"' + f.replace('"', '""') + '"' if f == "" or set(f) & set(',"\n\r') else f for f in (a, b)]
        text += ",".join(cells) + newline
        records.append({"a": a, "b": b})
    return text, records


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=quoted_csv(), workers=st.integers(2, 8))
def test_tiny_windows_give_exact_shards_or_a_clear_failure_never_wrong_records(
    memfs, monkeypatch, data, workers: int
) -> None:
    """With windows of a few bytes most cuts are guesses or given up: every shard set either reads
    the file's records exactly, or a shard fails naming its wrong cut."""
    monkeypatch.setattr(ranged_split, "WINDOW", 4)
    monkeypatch.setattr(ranged_split, "MAX_WINDOW", 32)
    text, records = data
    memfs.pipe("/prop/f.csv", text.encode())
    got = []
    try:
        for shard in CSVInputAdapter("memory://prop/f.csv").split(workers):
            out = MemoryOutputAdapter()
            Pipe(shard, out).run()
            got += out.records
    except PipelineError as failed:
        assert "inside a quoted field" in str(failed) and "fewer workers" in str(failed)
        return
    assert got == records


def test_a_filesystem_without_sizes_is_a_clear_error(memfs, monkeypatch: pytest.MonkeyPatch) -> None:
    """An HTTP server sending no Content-Length gives fsspec no size: byte ranges need one."""
    import fsspec.implementations.memory

    fsspec.filesystem("memory").pipe("/no-size/data.parquet", b"PAR1")
    monkeypatch.setattr(fsspec.implementations.memory.MemoryFileSystem, "size", lambda self, path: None)
    with pytest.raises(OSError, match="does not report the file's size"):
        ranged.RangedFile("memory://no-size/data.parquet")
    with pytest.raises(OSError, match=re.escape("memory://no-size/data.parquet")):
        ranged.object_size("memory://no-size/data.parquet")
