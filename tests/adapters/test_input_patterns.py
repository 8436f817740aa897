"""A directory, prefix or glob as an input (issue 16): expanded once to its files (sorted, hidden
and ``_``-files skipped, the adapter's format only), balanced by bytes over the workers, and run
through ``PipeManager.parallelize_pipe`` with every record exactly once."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from conftest import read_jsonl
from pydantic import BaseModel

from zoopipe_core import (
    ArrowInputAdapter,
    CSVInputAdapter,
    JSONInputAdapter,
    JSONOutputAdapter,
    MemoryOutputAdapter,
    ParquetInputAdapter,
    ParquetOutputAdapter,
    Pipe,
    PipelineError,
    PipeManager,
    PyGeneratorInputAdapter,
)
from zoopipe_core.adapters.balance import pieces_per_file
from zoopipe_core.engines import MultiProcessEngine


class Row(BaseModel):
    id: int
    name: str


# ------------------------------------------------------------------ the planner (pure)


def test_one_huge_file_and_many_tiny_ones() -> None:
    sizes = [1000] + [1] * 20
    pieces = pieces_per_file(sizes, 4, [True] * 21)
    assert pieces == [4] + [1] * 20


def test_uneven_sizes_cut_only_files_above_their_share() -> None:
    # total 200, share 50: 120 -> 3 pieces of 40, 52 stays whole (within the 10% slack), 28 whole
    assert pieces_per_file([120, 52, 28], 4, [True, True, True]) == [3, 1, 1]
    assert pieces_per_file([120, 52, 28], 4, [False, True, True]) == [1, 1, 1]


def test_more_files_than_workers_is_one_shard_per_file() -> None:
    assert pieces_per_file([10, 20, 30, 40, 50], 2, [True] * 5) == [1, 1, 1, 1, 1]


def test_fewer_files_than_workers_cuts_them_by_bytes() -> None:
    assert pieces_per_file([300, 100], 8, [True, True]) == [6, 2]
    assert pieces_per_file([100, 100], 3, [True, True]) == [2, 2]


def test_pieces_never_exceed_workers_and_empty_inputs_are_one_shard_each() -> None:
    assert pieces_per_file([10**9, 0], 3, [True, True]) == [3, 1]
    assert pieces_per_file([0, 0], 4, [True, True]) == [1, 1]
    with pytest.raises(ValueError, match="splittable"):
        pieces_per_file([1, 2], 2, [True])


# ------------------------------------------------------------------ expansion


def write_csv_files(folder: Path, counts: list[int], start: int = 0) -> list[int]:
    """``counts[i]`` rows in ``folder/part-i.csv``, ids running on from ``start``; the ids."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = []
    for index, count in enumerate(counts):
        rows = [(start + len(ids) + n, f"name-{start + len(ids) + n}") for n in range(count)]
        ids.extend(i for i, _ in rows)
        (folder / f"part-{index}.csv").write_text("id,name\n" + "".join(f"{i},{n}\n" for i, n in rows))
    return ids


def test_a_directory_gives_its_files_of_the_format_sorted_without_hidden_ones(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_csv_files(data, [1, 1, 1])
    for junk in ["_SUCCESS", ".part-0.csv.crc", "notes.txt", "_temporary/x.csv", ".hidden/y.csv"]:
        (data / junk).parent.mkdir(exist_ok=True)
        (data / junk).write_text("id,name\n9,junk\n")
    (data / "sub").mkdir()
    (data / "sub" / "z.csv").write_text("id,name\n7,deep\n")
    expected = [str(data / f"part-{i}.csv") for i in range(3)] + [str(data / "sub" / "z.csv")]
    for given in (str(data), f"{data}/", f"file://{data}/"):
        assert CSVInputAdapter(given).resolve_files() == expected
    assert CSVInputAdapter(f"{data}/part-[12].csv").resolve_files() == expected[1:3]
    assert CSVInputAdapter(f"{data}/*.txt").resolve_files() == [str(data / "notes.txt")]
    assert CSVInputAdapter(f"{data}/*/*.csv").resolve_files() == [str(data / "sub" / "z.csv")]
    assert CSVInputAdapter(f"{data}/_temporary/*.csv").resolve_files() == [str(data / "_temporary/x.csv")]


def test_a_pattern_under_the_home_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    write_csv_files(tmp_path / "data", [1, 1])
    assert CSVInputAdapter("~/data/*.csv").resolve_files() == [
        str(tmp_path / "data" / f"part-{i}.csv") for i in range(2)
    ]


def test_a_directory_of_tsv_files_is_tab_separated(tmp_path: Path) -> None:
    (tmp_path / "a.tsv").write_text("id\tname\n1\ta,b\n")
    (tmp_path / "b.csv").write_text("id,name\n2,b\n")
    out = MemoryOutputAdapter()
    assert Pipe(CSVInputAdapter(f"{tmp_path}/*.tsv"), out).run().success_count == 1
    assert out.records == [{"id": "1", "name": "a,b"}]
    shards = CSVInputAdapter(tmp_path).split(2)
    assert [s.delimiter for s in shards] == ["\t", ","]
    assert CSVInputAdapter(tmp_path, delimiter=";").split(2)[0].delimiter == ";"


def test_json_directories_take_json_lines_or_arrays_by_format(tmp_path: Path) -> None:
    for name in ["a.jsonl", "b.ndjson", "c.json", "d.jsonl.gz"]:
        (tmp_path / name).write_text("")
    assert [Path(p).name for p in JSONInputAdapter(tmp_path).resolve_files()] == [
        "a.jsonl",
        "b.ndjson",
        "d.jsonl.gz",
    ]
    assert [Path(p).name for p in JSONInputAdapter(tmp_path, format="array").resolve_files()] == ["c.json"]


def test_a_pattern_with_no_files_fails_naming_it(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"no input files match the glob .*\*\.csv"):
        CSVInputAdapter(f"{tmp_path}/*.csv").split(2)
    (tmp_path / "_SUCCESS").write_text("")
    pipe = Pipe(CSVInputAdapter(tmp_path), MemoryOutputAdapter())
    with pytest.raises(PipelineError, match=rf"of type .csv, .tsv are in the directory .*{tmp_path.name}"):
        pipe.run()


def test_a_single_pipe_reads_a_pattern_of_one_file_and_refuses_several(tmp_path: Path) -> None:
    write_csv_files(tmp_path / "one", [2])
    out = MemoryOutputAdapter()
    assert Pipe(CSVInputAdapter(tmp_path / "one"), out).run().success_count == 2
    write_csv_files(tmp_path / "two", [1, 1])
    with pytest.raises(PipelineError, match=r"got 2 files \(from .*two.*\).*parallelize_pipe"):
        Pipe(CSVInputAdapter(tmp_path / "two"), MemoryOutputAdapter()).run()


def test_a_memory_prefix_is_an_input(memfs) -> None:
    memfs.pipe("/prefix/a.jsonl", b'{"id": 1}\n')
    memfs.pipe("/prefix/b.jsonl", b'{"id": 2}\n{"id": 3}\n')
    shards = JSONInputAdapter("memory://prefix/").split(4)
    paths = [s.path for s in shards]
    # b.jsonl, over its share of the bytes, is cut into ranges as a local file would be
    assert paths == ["memory:///prefix/a.jsonl"] + ["memory:///prefix/b.jsonl"] * (len(paths) - 1)
    assert len(paths) == 3
    got = []
    for shard in shards:
        out = MemoryOutputAdapter()
        Pipe(shard, out).run()
        got += [r["id"] for r in out.records]
    assert got == [1, 2, 3]


# ------------------------------------------------------------------ balancing by bytes


def test_a_big_file_among_small_ones_is_cut_into_byte_ranges(tmp_path: Path) -> None:
    write_csv_files(tmp_path, [2000, 10, 10])
    shards = CSVInputAdapter(f"{tmp_path}/*.csv").split(4)
    big = str(tmp_path / "part-0.csv")
    assert [s.path for s in shards] == [big] * 4 + [str(tmp_path / f"part-{i}.csv") for i in (1, 2)]
    ranges = [s.byte_range for s in shards[:4]]
    assert ranges[0][0] > 0 and ranges[-1][1] == Path(big).stat().st_size
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    assert all(s.byte_range is None and s.paths == [s.path] for s in shards[4:])


def test_compressed_files_of_a_pattern_stay_whole(tmp_path: Path) -> None:
    import gzip

    (tmp_path / "big.jsonl.gz").write_bytes(gzip.compress(b'{"id": 1}\n' * 5000))
    (tmp_path / "small.jsonl").write_text('{"id": 2}\n')
    shards = JSONInputAdapter(tmp_path).split(4)
    assert [(Path(s.path).name, s.byte_range) for s in shards] == [
        ("big.jsonl.gz", None),
        ("small.jsonl", None),
    ]


def test_tables_of_a_pattern_are_cut_by_rows_when_large(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    for name, count in [("big.parquet", 4000), ("small.parquet", 10)]:
        rows = [{"id": i} for i in range(count)]
        Pipe(PyGeneratorInputAdapter(rows), ParquetOutputAdapter(tmp_path / name, row_group_size=500)).run()
    shards = ParquetInputAdapter(tmp_path).split(3)
    assert [Path(s.path).name for s in shards] == ["big.parquet"] * 3 + ["small.parquet"]
    ranges = [(s.skip_rows, s.limit) for s in shards[:3]]
    assert ranges[0][0] == 0 and sum(count for _, count in ranges) == 4000
    assert all(a[0] + a[1] == b[0] for a, b in itertools.pairwise(ranges))
    assert (shards[3].skip_rows, shards[3].limit) == (0, None)
    assert ArrowInputAdapter(f"{tmp_path}/").input_suffixes() == (".arrow", ".feather", ".ipc", ".arrows")


# ------------------------------------------------------------------ end to end, multiprocess engine


@pytest.mark.parametrize("workers", [1, 2, 5])
def test_a_glob_of_uneven_files_runs_every_record_once(tmp_path: Path, workers: int) -> None:
    data = tmp_path / "data"
    ids = write_csv_files(data, [3000, 7, 0, 400, 1])
    (data / "part-1.csv").write_text("id,name\n3000,a\nbroken\n3002,b\n3003,c,extra\n")
    ids = [i for i in ids if i not in range(3000, 3007)] + [3000, 3002]
    (data / "_SUCCESS").write_text("")
    out, errors = tmp_path / "out.jsonl", tmp_path / "errors.jsonl"
    pipe = Pipe(
        CSVInputAdapter(f"{data}/*.csv"),
        JSONOutputAdapter(out),
        error_output_adapter=JSONOutputAdapter(errors),
        schema_model=Row,
    )
    manager = PipeManager.parallelize_pipe(
        pipe, workers=workers, should_merge=True, engine=MultiProcessEngine(max_workers=2)
    )
    report = manager.run(show_progress=False)
    assert manager.pipe_count >= 5 and report.success_count == len(ids)
    got = [r["id"] for r in read_jsonl(out)]
    assert sorted(got) == sorted(ids) and len(got) == len(set(got))
    bad = sorted((e["source"], e["line"]) for e in read_jsonl(errors))
    assert bad == [(str(data / "part-1.csv"), 3), (str(data / "part-1.csv"), 5)]


def test_error_lines_in_a_cut_file_are_lines_of_that_file(tmp_path: Path) -> None:
    lines = [json.dumps({"id": i, "name": "n"}) for i in range(3000)]
    lines[2500] = "not json"
    (tmp_path / "big.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "small.jsonl").write_text('{"id": 5000, "name": "s"}\n{"id": "x"}\n')
    out, errors = tmp_path / "out.jsonl", tmp_path / "errors.jsonl"
    pipe = Pipe(
        JSONInputAdapter(tmp_path),
        JSONOutputAdapter(out),
        error_output_adapter=JSONOutputAdapter(errors),
        schema_model=Row,
    )
    manager = PipeManager.parallelize_pipe(pipe, workers=4, should_merge=True, engine="multiprocess")
    assert manager.pipe_count == 5
    manager.run(show_progress=False)
    got = sorted(r["id"] for r in read_jsonl(out))
    assert got == sorted([i for i in range(3000) if i != 2500] + [5000])
    bad = sorted((Path(e["source"]).name, e["line"]) for e in read_jsonl(errors))
    assert bad == [("big.jsonl", 2501), ("small.jsonl", 2)]
