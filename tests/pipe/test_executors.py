"""Executors: batch sizes and encoder threads change how the work runs, never what is written
or in which order."""

from __future__ import annotations

import pytest
from conftest import assert_completed, count_lines, read_jsonl
from pydantic import BaseModel

from zoopipe_core import (
    CSVInputAdapter,
    CSVOutputAdapter,
    JSONOutputAdapter,
    MemoryOutputAdapter,
    MultiThreadExecutor,
    Pipe,
    PyGeneratorInputAdapter,
    SingleThreadExecutor,
)

N = 20_000


class Row(BaseModel):
    id: int
    name: str


@pytest.fixture
def big_csv(write_csv):
    """20k rows; every 97th has a bad id, so errors interleave with good records."""
    lines = ["id,name"] + [f"{'bad' if i % 97 == 0 else i},name-{i}" for i in range(N)]
    return write_csv("big.csv", "\n".join(lines) + "\n")


BAD = [i for i in range(N) if i % 97 == 0]
GOOD = [i for i in range(N) if i % 97]

EXECUTORS = [
    SingleThreadExecutor(batch_size=100),
    MultiThreadExecutor(max_workers=4, batch_size=100),
    MultiThreadExecutor(max_workers=4, batch_size=7),
    MultiThreadExecutor(max_workers=1, batch_size=100_000),
]


@pytest.mark.parametrize("executor", EXECUTORS, ids=repr)
def test_output_order_equals_input_order(executor, big_csv, tmp_path):
    target, error_target = tmp_path / "out.jsonl", tmp_path / "errors.jsonl"
    report = Pipe(
        CSVInputAdapter(big_csv),
        JSONOutputAdapter(str(target)),
        error_output_adapter=JSONOutputAdapter(str(error_target)),
        schema_model=Row,
        executor=executor,
    ).run()
    assert_completed(report, read=N, written=len(GOOD), errors=len(BAD))
    assert count_lines(target) == len(GOOD) and count_lines(error_target) == len(BAD)
    assert [r["id"] for r in read_jsonl(target)] == GOOD
    assert [e["line"] for e in read_jsonl(error_target)] == [i + 2 for i in BAD]


def test_multithreaded_output_is_byte_identical_to_single_threaded(big_csv, tmp_path):
    outputs = {}
    for name, executor in [
        ("single", SingleThreadExecutor(batch_size=100)),
        ("multi", MultiThreadExecutor(max_workers=4, batch_size=100)),
    ]:
        target = tmp_path / f"{name}.csv"
        report = Pipe(
            CSVInputAdapter(big_csv),
            CSVOutputAdapter(str(target)),
            schema_model=Row,
            post_validation=[lambda rs: [{**r, "even": r["id"] % 2 == 0} for r in rs]],
            executor=executor,
        ).run()
        assert_completed(report, read=N, written=len(GOOD), errors=len(BAD))
        assert count_lines(target) == len(GOOD) + 1
        outputs[name] = target.read_bytes()
    assert outputs["single"] == outputs["multi"]


def test_generator_order_with_many_threads():
    rows = [{"seq": i} for i in range(N)]
    out = MemoryOutputAdapter()
    report = Pipe(
        PyGeneratorInputAdapter(iter(rows)), out, executor=MultiThreadExecutor(max_workers=4, batch_size=100)
    ).run()
    assert_completed(report, read=N, written=N, errors=0)
    assert out.records == rows


def test_transform_sees_batches_of_the_executor_size():
    sizes = []

    def record_size(records):
        sizes.append(len(records))
        return records

    report = Pipe(
        PyGeneratorInputAdapter({"n": i} for i in range(1050)),
        MemoryOutputAdapter(),
        post_validation=[record_size],
        executor=MultiThreadExecutor(max_workers=2, batch_size=100),
    ).run()
    assert_completed(report, read=1050, written=1050, errors=0)
    assert sizes == [100] * 10 + [50]


def test_csv_batches_follow_the_batch_size(write_csv):
    sizes = []
    path = write_csv("in.csv", "id,name\n" + "".join(f"{i},n\n" for i in range(25)))
    report = Pipe(
        CSVInputAdapter(path),
        MemoryOutputAdapter(),
        pre_validation=[lambda rs: sizes.append(len(rs))],
        executor=SingleThreadExecutor(batch_size=10),
    ).run()
    assert_completed(report, read=25, written=25, errors=0)
    assert sizes == [10, 10, 5]


@pytest.mark.parametrize(
    "make",
    [
        lambda: SingleThreadExecutor(batch_size=0),
        lambda: MultiThreadExecutor(batch_size=0),
        lambda: MultiThreadExecutor(max_workers=0),
    ],
)
def test_executor_arguments_are_checked(make):
    with pytest.raises(ValueError, match="at least 1"):
        make()


def test_default_multithread_workers_use_the_cpus():
    import os

    assert MultiThreadExecutor().encode_workers == (os.cpu_count() or 1)
    assert SingleThreadExecutor().encode_workers == 1
