"""An ``s3://bucket/prefix/*.csv`` glob (and a prefix) as the input of a parallel run on moto's S3
server (issue 16): the objects become shards, every record is read exactly once, and error
records name their object and line."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel
from s3_server import s3_keys

from zoopipe_core import CSVInputAdapter, JSONInputAdapter, JSONOutputAdapter, Pipe, PipeManager
from zoopipe_core.engines import MultiProcessEngine


class Row(BaseModel):
    id: int
    name: str


def put_csv_objects(fs, bucket: str, counts: list[int]) -> list[int]:
    """``counts[i]`` rows in ``data/part-i.csv`` plus a ``_SUCCESS`` marker; the ids written."""
    ids: list[int] = []
    for index, count in enumerate(counts):
        rows = range(len(ids), len(ids) + count)
        ids.extend(rows)
        fs.pipe(
            f"{bucket}/data/part-{index}.csv", ("id,name\n" + "".join(f"{i},n{i}\n" for i in rows)).encode()
        )
    fs.pipe(f"{bucket}/data/_SUCCESS", b"")
    fs.pipe(f"{bucket}/other/part-9.csv", b"id,name\n999999,elsewhere\n")
    return ids


@pytest.mark.parametrize("workers", [1, 3])
def test_an_s3_glob_of_uneven_objects_runs_every_record_once(s3_server, s3_bucket, workers: int) -> None:
    fs = s3_server.filesystem()
    ids = put_csv_objects(fs, s3_bucket, [500, 3, 0, 40])
    fs.pipe(f"{s3_bucket}/data/part-2.csv", b"id,name\nnot-a-number,x\n")
    out, errors = f"s3://{s3_bucket}/out/all.jsonl", f"s3://{s3_bucket}/out/errors.jsonl"
    pipe = Pipe(
        CSVInputAdapter(f"s3://{s3_bucket}/data/*.csv"),
        JSONOutputAdapter(out),
        error_output_adapter=JSONOutputAdapter(errors),
        schema_model=Row,
    )
    manager = PipeManager.parallelize_pipe(
        pipe, workers=workers, should_merge=True, engine=MultiProcessEngine(max_workers=2)
    )
    paths = [p.input_adapter.path for p in manager.pipes]
    assert paths == sorted(paths) and list(dict.fromkeys(paths)) == [
        f"s3://{s3_bucket}/data/part-{i}.csv" for i in range(4)
    ], "shards of every object, sorted; _SUCCESS and other prefixes left out"
    assert (paths.count(f"s3://{s3_bucket}/data/part-0.csv") > 1) == (workers > 1), (
        "the large object is cut into byte ranges"
    )
    report = manager.run(show_progress=False)
    assert report.success_count == len(ids) and report.error_count == 1
    got = [json.loads(line)["id"] for line in fs.cat(f"{s3_bucket}/out/all.jsonl").decode().splitlines()]
    assert sorted(got) == ids and len(set(got)) == len(got)
    [error] = [json.loads(line) for line in fs.cat(f"{s3_bucket}/out/errors.jsonl").decode().splitlines()]
    assert (error["source"], error["line"]) == (f"s3://{s3_bucket}/data/part-2.csv", 2)
    assert s3_keys(s3_server, s3_bucket) == [
        "data/_SUCCESS",
        *[f"data/part-{i}.csv" for i in range(4)],
        "other/part-9.csv",
        "out/all.jsonl",
        "out/errors.jsonl",
    ], "no part objects left"


def test_an_s3_prefix_gives_its_objects_of_the_format(s3_server, s3_bucket) -> None:
    fs = s3_server.filesystem()
    fs.pipe(f"{s3_bucket}/logs/a.jsonl", b'{"id": 1, "name": "a"}\n')
    fs.pipe(f"{s3_bucket}/logs/b.csv", b"id,name\n2,b\n")
    fs.pipe(f"{s3_bucket}/logs/deeper/c.jsonl", b'{"id": 3, "name": "c"}\n')
    adapter = JSONInputAdapter(f"s3://{s3_bucket}/logs/")
    assert adapter.resolve_files() == [
        f"s3://{s3_bucket}/logs/a.jsonl",
        f"s3://{s3_bucket}/logs/deeper/c.jsonl",
    ]
    assert adapter.sizes[f"s3://{s3_bucket}/logs/a.jsonl"] == 23
