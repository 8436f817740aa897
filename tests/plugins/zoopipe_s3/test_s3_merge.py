"""should_merge=True on S3 (moto's server, see tests/s3_server.py): CSV and JSON Lines parts merge on
the store, by a multipart upload of server-side part copies (``UploadPartCopy``): byte-identical to
a local merge, headers dropped, parts removed, nothing published and no upload left when it fails,
and the process merging reads no part bodies (only CSV header lines and parts under S3's 5 MiB
minimum); a parallel run merges on a worker, the driver sends no request for it."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest
import s3fs
from fsspec.asyn import sync_wrapper
from s3_server import bytes_read, s3_keys, s3_pending_uploads
from zoopipe_s3 import merge as s3_merge

from zoopipe_core import (
    CSVInputAdapter,
    CSVOutputAdapter,
    JSONOutputAdapter,
    Pipe,
    PipeManager,
    ShardingError,
)
from zoopipe_core.adapters import merge
from zoopipe_core.engines import MultiProcessEngine

MIB = 1 << 20
PAD = b"x" * 1000


def jsonl_part(first: int, size: int) -> bytes:
    """JSON Lines of about ``size`` bytes (1 KiB lines), ids from ``first``."""
    return b"".join(b'{"i":%d,"pad":"%s"}\n' % (i, PAD) for i in range(first, first + max(size // 1024, 1)))


def csv_part(first: int, size: int) -> bytes:
    rows = b"".join(b"%d,%s\n" % (i, PAD) for i in range(first, first + max(size // 1010, 1)))
    return b"i,pad\n" + rows


#: Parts over and under S3's 5 MiB minimum, one empty: a server-side copy, a run of small parts
#: topped up from the start of the large one after it, whose rest is copied, a small last part.
MIXED = [int(6.2 * MIB), 300, 0, 2 * MIB, 9 * MIB, 100]


def write_parts(
    s3_server: Any, tmp_path: Path, target: Any, local: Any, bodies: list[bytes]
) -> tuple[list, list]:
    """Part ``i`` holding ``bodies[i]`` for the S3 ``target`` and the local ``local``."""
    fs = s3_server.filesystem()
    parts = [merge.shard_output(target, i) for i in range(len(bodies))]
    local_parts = [merge.shard_output(local, i) for i in range(len(bodies))]
    for part, local_part, body in zip(parts, local_parts, bodies, strict=True):
        fs.pipe(part.path, body)
        Path(local_part.path).write_bytes(body)
    return parts, local_parts


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_parts_of_mixed_sizes_merge_on_s3_as_they_do_locally(s3_server, s3_bucket, tmp_path, kind, s3_calls):
    make, adapter = (jsonl_part, JSONOutputAdapter) if kind == "jsonl" else (csv_part, CSVOutputAdapter)
    bodies = [make(i * 100_000, size) if size else b"" for i, size in enumerate(MIXED)]
    target, local = adapter(f"s3://{s3_bucket}/out/all.{kind}"), adapter(str(tmp_path / f"all.{kind}"))
    parts, local_parts = write_parts(s3_server, tmp_path, target, local, bodies)
    s3_calls.clear()
    merge.merge_outputs(target, parts)
    during = list(s3_calls)
    merge.merge_outputs(local, local_parts)
    merged = s3_server.filesystem().cat(target.path)
    assert merged == Path(local.path).read_bytes()
    if kind == "csv":
        assert merged.count(b"i,pad\n") == 1 and merged.startswith(b"i,pad\n")
        assert merged == b"i,pad\n" + b"".join(b[len(b"i,pad\n") :] for b in bodies)
    else:
        assert merged == b"".join(bodies)
    assert s3_keys(s3_server, s3_bucket) == [f"out/all.{kind}"]
    assert s3_pending_uploads(s3_server, s3_bucket) == []
    methods = [method for method, _, _ in during]
    assert methods.count("upload_part_copy") == 3  # the 6.2 MiB part, the rest of the 9 MiB one, the last
    assert methods.count("complete_multipart_upload") == 1
    # Read here: the small parts before the 9 MiB one, topped up from its start to 5 MiB (+ CSV headers).
    assert sum(n for _, n in bytes_read(during)) <= 5 * MIB + 64 * 1024 * len(MIXED)


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_large_parts_are_copied_by_s3_and_never_read(s3_server, s3_bucket, tmp_path, kind, s3_calls):
    make, adapter = (jsonl_part, JSONOutputAdapter) if kind == "jsonl" else (csv_part, CSVOutputAdapter)
    bodies = [make(i * 100_000, 6 * MIB) for i in range(3)]
    target, local = adapter(f"s3://{s3_bucket}/all.{kind}"), adapter(str(tmp_path / f"all.{kind}"))
    parts, local_parts = write_parts(s3_server, tmp_path, target, local, bodies)
    s3_calls.clear()
    merge.merge_outputs(target, parts)
    during = list(s3_calls)
    merge.merge_outputs(local, local_parts)
    assert s3_server.filesystem().cat(target.path) == Path(local.path).read_bytes()
    assert [method for method, _, _ in during].count("upload_part_copy") == 3
    reads = bytes_read(during)
    if kind == "jsonl":
        assert reads == []
    else:  # one ranged read of each part's first 64 KiB, to check its header
        assert reads == [("bytes=0-65535", 64 * 1024)] * 3
    assert s3_keys(s3_server, s3_bucket) == [f"all.{kind}"]


def test_a_part_over_the_copy_limit_is_copied_in_slices(
    s3_server, s3_bucket, tmp_path, monkeypatch, s3_calls
):
    monkeypatch.setattr(s3_merge, "MAX_PART", 7 * MIB)  # S3's limit is 5 GiB
    bodies = [jsonl_part(0, 12 * MIB), jsonl_part(10**6, 1000)]
    target, local = (
        JSONOutputAdapter(f"s3://{s3_bucket}/all.jsonl"),
        JSONOutputAdapter(str(tmp_path / "a.jsonl")),
    )
    parts, _ = write_parts(s3_server, tmp_path, target, local, bodies)
    s3_calls.clear()
    merge.merge_outputs(target, parts)
    assert s3_server.filesystem().cat(target.path) == b"".join(bodies)
    copies = sorted(
        (kw["PartNumber"], kw["CopySourceRange"]) for m, kw, _ in s3_calls if m == "upload_part_copy"
    )
    ranges = [copy for _, copy in copies]
    size = len(bodies[0])
    assert ranges == [
        f"bytes=0-{size // 2 - 1}",
        f"bytes={size // 2}-{size - 1}",
        f"bytes=0-{len(bodies[1]) - 1}",
    ]


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_parts_all_empty_merge_into_an_empty_object(s3_server, s3_bucket, tmp_path, kind):
    """Shards that wrote no records: an empty merged object, as a local merge gives."""
    adapter = JSONOutputAdapter if kind == "jsonl" else CSVOutputAdapter
    target, local = adapter(f"s3://{s3_bucket}/all.{kind}"), adapter(str(tmp_path / f"all.{kind}"))
    parts, _ = write_parts(s3_server, tmp_path, target, local, [b"", b""])
    merge.merge_outputs(target, parts)
    assert s3_server.filesystem().cat(target.path) == b""
    assert s3_keys(s3_server, s3_bucket) == [f"all.{kind}"]


def test_a_csv_header_mismatch_publishes_nothing_and_keeps_the_parts(
    s3_server, s3_bucket, tmp_path, s3_calls
):
    target = CSVOutputAdapter(f"s3://{s3_bucket}/all.csv")
    local = CSVOutputAdapter(str(tmp_path / "all.csv"))
    bodies = [csv_part(0, 6 * MIB), b"i,other\n1,2\n"]
    parts, _ = write_parts(s3_server, tmp_path, target, local, bodies)
    with pytest.raises(ShardingError, match="has the header b'i,other\\\\n'"):
        merge.merge_outputs(target, parts)
    assert s3_keys(s3_server, s3_bucket) == ["all.part-00000.csv", "all.part-00001.csv"]
    assert s3_pending_uploads(s3_server, s3_bucket) == []
    assert "create_multipart_upload" not in [method for method, _, _ in s3_calls]


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_a_part_that_vanishes_mid_merge_aborts_the_upload(s3_server, s3_bucket, tmp_path, monkeypatch, kind):
    """A part deleted after it was measured: its copy fails, the upload is aborted, nothing is
    published, and the other parts stay for a rerun."""
    make, adapter = (jsonl_part, JSONOutputAdapter) if kind == "jsonl" else (csv_part, CSVOutputAdapter)
    bodies = [make(0, 6 * MIB), make(10**6, 6 * MIB), make(2 * 10**6, 1000)]
    target, local = adapter(f"s3://{s3_bucket}/all.{kind}"), adapter(str(tmp_path / f"all.{kind}"))
    parts, _ = write_parts(s3_server, tmp_path, target, local, bodies)
    original = s3fs.S3FileSystem._call_s3
    started: list[str] = []

    async def delete_a_part_once_started(self: Any, method: str, *args: Any, **kwargs: Any) -> Any:
        response = await original(self, method, *args, **kwargs)
        if method == "create_multipart_upload":
            started.append(response["UploadId"])
            await original(self, "delete_object", Bucket=s3_bucket, Key=f"all.part-00001.{kind}")
        return response

    monkeypatch.setattr(s3fs.S3FileSystem, "_call_s3", delete_a_part_once_started)
    monkeypatch.setattr(s3fs.S3FileSystem, "call_s3", sync_wrapper(delete_a_part_once_started))
    with pytest.raises(OSError, match=f"could not merge s3://{s3_bucket}/all.part-00001.{kind}"):
        merge.merge_outputs(target, parts)
    assert len(started) == 1
    assert s3_keys(s3_server, s3_bucket) == [f"all.part-00000.{kind}", f"all.part-00002.{kind}"]
    assert s3_pending_uploads(s3_server, s3_bucket) == []


def test_gzip_json_lines_merge_by_copy_and_gzip_csv_through_python(s3_server, s3_bucket, tmp_path, s3_calls):
    """Concatenated gzip members are one valid gzip file: .jsonl.gz parts are copied as they are.
    A .csv.gz part's header is inside its compressed data: those are merged through Python."""
    # Level 0: a gzip part as large as its data, cheaply (over 5 MiB: copied by S3).
    lines = [gzip.compress(jsonl_part(0, 6 * MIB), compresslevel=0), gzip.compress(jsonl_part(10**6, 1))]
    target = JSONOutputAdapter(f"s3://{s3_bucket}/all.jsonl.gz")
    parts, _ = write_parts(
        s3_server, tmp_path, target, JSONOutputAdapter(str(tmp_path / "a.jsonl.gz")), lines
    )
    s3_calls.clear()
    merge.merge_outputs(target, parts)
    merged = gzip.decompress(s3_server.filesystem().cat(target.path))
    assert merged == jsonl_part(0, 6 * MIB) + jsonl_part(10**6, 1)
    assert [method for method, _, _ in s3_calls].count("upload_part_copy") == 2

    csvs = [gzip.compress(b"i\n%d\n" % i) for i in range(2)]
    target = CSVOutputAdapter(f"s3://{s3_bucket}/all.csv.gz")
    parts, _ = write_parts(s3_server, tmp_path, target, CSVOutputAdapter(str(tmp_path / "a.csv.gz")), csvs)
    merge.merge_outputs(target, parts)
    assert gzip.decompress(s3_server.filesystem().cat(target.path)) == b"i\n0\n1\n"
    assert s3_keys(s3_server, s3_bucket) == ["all.csv.gz", "all.jsonl.gz"]


def test_parallelize_pipe_merges_its_s3_output_on_the_store_from_a_worker(
    s3_server, s3_bucket, tmp_path, s3_calls
):
    """End to end on the multiprocess engine: two shards each write over 5 MiB of CSV to S3; a
    worker merges them (with server-side copies, as the tests above show of merge_outputs): the
    driver sends no S3 request for the merge at all, so it reads no byte of the parts."""
    source = tmp_path / "in.csv"
    rows = 14_000
    source.write_bytes(b"i,pad\n" + b"".join(b"%d,%s\n" % (i, PAD) for i in range(rows)))
    url = f"s3://{s3_bucket}/out/all.csv"
    pipe = Pipe(CSVInputAdapter(str(source)), CSVOutputAdapter(url, field_names=["i", "pad"]))
    manager = PipeManager.parallelize_pipe(
        pipe, workers=2, should_merge=True, engine=MultiProcessEngine(max_workers=2)
    )
    s3_calls.clear()
    manager.run(show_progress=False)
    during = list(s3_calls)
    assert manager.report.merge_error is None
    merged = s3_server.filesystem().cat(url)
    assert merged == source.read_bytes()
    assert s3_keys(s3_server, s3_bucket) == ["out/all.csv"]
    assert s3_pending_uploads(s3_server, s3_bucket) == []
    assert during == []
