"""Splitting inputs and naming shard outputs: what parallelize_pipe accepts, and what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from zoopipe_core import (
    CSVInputAdapter,
    CSVOutputAdapter,
    JSONInputAdapter,
    JSONOutputAdapter,
    MemoryOutputAdapter,
    Pipe,
    PipelineError,
    PipeManager,
    PyGeneratorInputAdapter,
    ShardingError,
)
from zoopipe_core.adapters.base import InputAdapter
from zoopipe_core.adapters.files import part_path
from zoopipe_core.parallel.shards import plan_shards


@pytest.mark.parametrize(
    ("path", "index", "expected"),
    [
        ("out.jsonl", 0, "out.part-00000.jsonl"),
        ("dir/out.csv", 12, "dir/out.part-00012.csv"),
        ("out.jsonl.gz", 1, "out.part-00001.jsonl.gz"),
        ("data.v2.parquet", 2, "data.v2.part-00002.parquet"),
        ("out", 3, "out.part-00003"),
        ("dir.d/out", 4, "dir.d/out.part-00004"),
        ("s3://bucket/x/out.arrow", 5, "s3://bucket/x/out.part-00005.arrow"),
    ],
)
def test_part_names(path: str, index: int, expected: str) -> None:
    assert part_path(path, index) == expected


def test_a_list_of_files_splits_into_one_shard_per_file(tmp_path: Path) -> None:
    files = [str(tmp_path / f"f{i}.jsonl") for i in range(5)]
    shards = JSONInputAdapter(files).split(2)
    assert [s.path for s in shards] == files and all(s.paths == [s.path] for s in shards)
    csv_shards = CSVInputAdapter(files[:2], delimiter=";").split(8)
    assert [s.path for s in csv_shards] == files[:2] and csv_shards[1].delimiter == ";"


def test_a_single_pipe_refuses_a_list_of_files(tmp_path: Path) -> None:
    files = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    for f in files:
        f.write_text('{"a": 1}\n')
    pipe = Pipe(JSONInputAdapter(files), JSONOutputAdapter(tmp_path / "out.jsonl"))
    with pytest.raises(PipelineError, match=r"got 2 files.*parallelize_pipe"):
        pipe.run()
    assert Pipe(JSONInputAdapter([files[0]]), MemoryOutputAdapter()).run().success_count == 1


@pytest.mark.parametrize("name", ["in.jsonl.gz", "in.csv.zst"])
def test_compressed_files_cannot_be_split(tmp_path: Path, name: str) -> None:
    adapter = (CSVInputAdapter if ".csv" in name else JSONInputAdapter)(tmp_path / name)
    with pytest.raises(ShardingError, match=r"compressed .* cannot be split"):
        PipeManager.parallelize_pipe(Pipe(adapter, JSONOutputAdapter(tmp_path / "o.jsonl")), workers=2)


def test_a_python_iterable_cannot_be_split(tmp_path: Path) -> None:
    pipe = Pipe(PyGeneratorInputAdapter(iter([{"a": 1}])), JSONOutputAdapter(tmp_path / "o.jsonl"))
    with pytest.raises(ShardingError, match="Python iterable"):
        PipeManager.parallelize_pipe(pipe, workers=2)


def test_an_adapter_without_split_says_so(tmp_path: Path) -> None:
    class Numbers(InputAdapter):
        def iter_batches(self, batch_size):
            yield [{"n": 1}]

    with pytest.raises(ShardingError, match=r"Numbers cannot be split.*split\(workers\)"):
        PipeManager.parallelize_pipe(Pipe(Numbers(), JSONOutputAdapter(tmp_path / "o.jsonl")), workers=2)


def test_skip_rows_and_limit_cannot_be_sharded(tmp_path: Path) -> None:
    with pytest.raises(ShardingError, match="skip_rows or limit"):
        JSONInputAdapter([tmp_path / "a.jsonl", tmp_path / "b.jsonl"], limit=3).split(2)


def test_outputs_without_a_file_cannot_be_sharded(tmp_path: Path) -> None:
    files = [str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")]
    with pytest.raises(ShardingError, match="MemoryOutputAdapter cannot be sharded"):
        plan_shards(Pipe(JSONInputAdapter(files), MemoryOutputAdapter()), 2, should_merge=False)


def test_workers_must_be_positive(tmp_path: Path) -> None:
    pipe = Pipe(JSONInputAdapter([str(tmp_path / "a.jsonl")]), JSONOutputAdapter(tmp_path / "o.jsonl"))
    for workers in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="workers must be a positive int"):
            PipeManager.parallelize_pipe(pipe, workers=workers)


def test_the_plan_shards_outputs_and_error_outputs(tmp_path: Path) -> None:
    files = [str(tmp_path / f"f{i}.csv") for i in range(3)]
    pipe = Pipe(
        CSVInputAdapter(files),
        CSVOutputAdapter(tmp_path / "out.csv"),
        error_output_adapter=JSONOutputAdapter(tmp_path / "errors.jsonl"),
    )
    plan = plan_shards(pipe, workers=2, should_merge=True)
    assert [p.output_adapter.path for p in plan.pipes] == [
        str(tmp_path / f"out.part-{i:05d}.csv") for i in range(3)
    ]
    assert plan.pipes[2].error_output_adapter.path == str(tmp_path / "errors.part-00002.jsonl")
    assert [p.report.pipe_index for p in plan.pipes] == [0, 1, 2]
    assert [target.path for target, _ in plan.merges] == [
        str(tmp_path / "out.csv"),
        str(tmp_path / "errors.jsonl"),
    ]
    assert pipe.output_adapter.path == str(tmp_path / "out.csv"), "the original pipe is unchanged"


def test_zstd_csv_cannot_be_merged(tmp_path: Path) -> None:
    files = [str(tmp_path / "a.csv"), str(tmp_path / "b.csv")]
    pipe = Pipe(CSVInputAdapter(files), CSVOutputAdapter(tmp_path / "out.csv.zst"))
    with pytest.raises(ShardingError, match="zstd"):
        plan_shards(pipe, workers=2, should_merge=True)
    assert plan_shards(pipe, workers=2, should_merge=False).merges == []


def test_a_pipe_pickles_without_its_run_state(tmp_path: Path) -> None:
    import pickle

    pipe = Pipe(PyGeneratorInputAdapter([]), JSONOutputAdapter(tmp_path / "o.jsonl"))
    pipe.run()
    copy = pickle.loads(
        pickle.dumps(Pipe(JSONInputAdapter(tmp_path / "i.jsonl"), JSONOutputAdapter(tmp_path / "o.jsonl")))
    )
    assert copy.report.status.value == "pending" and copy._thread is None


def test_one_json_array_file_cannot_be_split_but_a_list_can(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('[{"a": 1}]')
    with pytest.raises(ShardingError, match=r"JSON array.*cannot be cut"):
        JSONInputAdapter(tmp_path / "a.json").split(2)
    assert len(JSONInputAdapter([tmp_path / "a.json", tmp_path / "b.json"]).split(2)) == 2


def test_parquet_row_ranges() -> None:
    from zoopipe_core.adapters.tables import row_ranges

    assert row_ranges([10, 10, 10], 2) == [(0, 20), (20, 10)]
    assert row_ranges([5], 2) == [(0, 3), (3, 2)]
    assert row_ranges([2], 5) == [(0, 1), (1, 1)]
    assert row_ranges([], 3) == [(0, 0)]
