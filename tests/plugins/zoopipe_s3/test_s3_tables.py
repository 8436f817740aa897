"""Parquet and Arrow IPC files on S3 (moto's server, see tests/s3_server.py) split from their
footers alone (issue 16): the driver reads the footer (and, for Arrow, each batch's message
header), never the data; a shard fetches only its own row groups or record batches; every row
is read exactly once, in order, whatever the number of workers; a stream on a URL is refused
with what to do; a truncated or damaged file fails naming it."""

from __future__ import annotations

import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
import s3fs
from fsspec.asyn import sync_wrapper

from zoopipe_core import (
    ArrowInputAdapter,
    JSONOutputAdapter,
    MemoryOutputAdapter,
    ParquetInputAdapter,
    Pipe,
    PipelineError,
    PipeManager,
    ShardingError,
)
from zoopipe_core.adapters.ranged import DRIVER_READS
from zoopipe_core.engines import MultiProcessEngine

KIB = 1024
#: What a Parquet shard fetches at the end of the file first (parquet_io.rs FOOTER_FETCH).
PARQUET_TAIL = 16 * KIB
#: The least an Arrow reader fetches for a small read (ranged_io.rs MIN_FETCH).
ARROW_READ_AHEAD = 64 * KIB


@pytest.fixture
def s3_gets(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str | None, int]]:
    """The Range header and byte count of every S3 GetObject this process makes through s3fs."""
    gets: list[tuple[str | None, int]] = []
    original = s3fs.S3FileSystem._call_s3

    async def recording(self: Any, method: str, *args: Any, **kwargs: Any) -> Any:
        response = await original(self, method, *args, **kwargs)
        if method == "get_object":
            gets.append((kwargs.get("Range"), response["ContentLength"]))
        return response

    monkeypatch.setattr(s3fs.S3FileSystem, "_call_s3", recording)
    monkeypatch.setattr(s3fs.S3FileSystem, "call_s3", sync_wrapper(recording))
    return gets


def table(first: int, count: int, pad: int = 20) -> pa.Table:
    return pa.table(
        {"id": range(first, first + count), "text": [f"{i:0>{pad}}" for i in range(first, first + count)]}
    )


def put_parquet(fs: Any, path: str, groups: int, group_rows: int, pad: int = 20) -> bytes:
    """``groups`` row groups of ``group_rows`` rows, uncompressed (so bytes follow rows)."""
    buffer = io.BytesIO()
    pq.write_table(table(0, groups * group_rows, pad), buffer, row_group_size=group_rows, compression="none")
    fs.pipe(path, buffer.getvalue())
    return buffer.getvalue()


def put_arrow(
    fs: Any, path: str, batches: int, batch_rows: int, stream: bool = False, pad: int = 20
) -> bytes:
    buffer = io.BytesIO()
    data = table(0, batches * batch_rows, pad)
    with (ipc.new_stream if stream else ipc.new_file)(buffer, data.schema) as writer:
        for batch in data.to_batches(max_chunksize=batch_rows):
            writer.write_batch(batch)
    fs.pipe(path, buffer.getvalue())
    return buffer.getvalue()


def read_ids(shards: list) -> list[int]:
    """The ids of every shard, each run by a pipe of its own, in order."""
    ids: list[int] = []
    for shard in shards:
        out = MemoryOutputAdapter()
        Pipe(shard, out).run()
        ids += [record["id"] for record in out.records]
    return ids


# --------------------------------------------------------------------------- Parquet


@pytest.mark.parametrize("groups", [3, 14])
def test_parquet_on_s3_reads_every_row_once_in_order_for_1_to_10_workers(
    s3_server, s3_bucket, groups: int
) -> None:
    """3 row groups: fewer than most worker counts, so shards cut rows within groups."""
    put_parquet(s3_server.filesystem(), f"{s3_bucket}/t.parquet", groups, 40)
    for workers in range(1, 11):
        shards = ParquetInputAdapter(f"s3://{s3_bucket}/t.parquet").split(workers)
        assert len(shards) == workers
        assert read_ids(shards) == list(range(groups * 40)), f"{workers} workers"


def test_parallelize_pipe_over_a_parquet_object_with_fewer_row_groups_than_workers(
    s3_server, s3_bucket
) -> None:
    put_parquet(s3_server.filesystem(), f"{s3_bucket}/t.parquet", 2, 50)
    out = f"s3://{s3_bucket}/out/all.jsonl"
    pipe = Pipe(ParquetInputAdapter(f"s3://{s3_bucket}/t.parquet"), JSONOutputAdapter(out))
    manager = PipeManager.parallelize_pipe(
        pipe, workers=3, should_merge=True, engine=MultiProcessEngine(max_workers=3)
    )
    manager.run(show_progress=False)
    assert manager.report.merge_error is None
    lines = s3_server.filesystem().cat(out).decode().splitlines()
    assert [json.loads(line)["id"] for line in lines] == list(range(100))


def test_the_driver_reads_only_the_parquet_footer(s3_server, s3_bucket, s3_gets) -> None:
    data = put_parquet(s3_server.filesystem(), f"{s3_bucket}/t.parquet", 16, 2000)
    footer = pq.read_metadata(io.BytesIO(data)).serialized_size
    DRIVER_READS.reset()
    shards = ParquetInputAdapter(f"s3://{s3_bucket}/t.parquet").split(4)
    assert [shard.limit for shard in shards] == [8000] * 4
    # The 8-byte tail (footer length and magic), then the footer.
    assert (DRIVER_READS.bytes, DRIVER_READS.requests) == (footer + 8, 2)
    assert sum(count for _, count in s3_gets) == footer + 8 < len(data) / 50


def test_a_parquet_shard_fetches_only_its_row_groups_and_the_footer(s3_server, s3_bucket, s3_gets) -> None:
    data = put_parquet(s3_server.filesystem(), f"{s3_bucket}/t.parquet", 16, 2000)
    metadata = pq.read_metadata(io.BytesIO(data))
    shard = ParquetInputAdapter(f"s3://{s3_bucket}/t.parquet").split(4)[1]  # rows 8000..16000: groups 4..7
    s3_gets.clear()
    assert read_ids([shard]) == list(range(8000, 16000))
    groups = sum(
        metadata.row_group(g).column(c).total_compressed_size
        for g in range(4, 8)
        for c in range(metadata.num_columns)
    )
    fetched = sum(count for _, count in s3_gets)
    assert groups <= fetched <= groups + PARQUET_TAIL + KIB, (fetched, groups, len(data))


def test_a_truncated_or_damaged_parquet_object_fails_naming_it(s3_server, s3_bucket) -> None:
    fs = s3_server.filesystem()
    data = put_parquet(fs, f"{s3_bucket}/whole.parquet", 3, 100)
    fs.pipe(f"{s3_bucket}/cut.parquet", data[: len(data) - 50])
    cut = f"s3://{s3_bucket}/cut.parquet"
    with pytest.raises(ShardingError, match=rf"cannot split {cut} .*truncated"):
        ParquetInputAdapter(cut).split(2)
    with pytest.raises(PipelineError, match=rf"{cut}.*not a readable Parquet file"):
        Pipe(ParquetInputAdapter(cut), MemoryOutputAdapter()).run()

    chunk = pq.read_metadata(io.BytesIO(data)).row_group(1).column(1)
    start = chunk.data_page_offset
    damaged = (
        data[:start] + b"\xab" * chunk.total_compressed_size + data[start + chunk.total_compressed_size :]
    )
    fs.pipe(f"{s3_bucket}/damaged.parquet", damaged)
    url = f"s3://{s3_bucket}/damaged.parquet"
    with pytest.raises(PipelineError, match=rf"{url}.*row group 1 \(rows 101..200\).*damaged"):
        Pipe(ParquetInputAdapter(url), MemoryOutputAdapter()).run()


# --------------------------------------------------------------------------- Arrow IPC


def test_an_arrow_file_on_s3_reads_every_row_once_in_order_for_1_to_10_workers(s3_server, s3_bucket) -> None:
    put_arrow(s3_server.filesystem(), f"{s3_bucket}/t.arrow", 6, 30)
    for workers in range(1, 11):
        shards = ArrowInputAdapter(f"s3://{s3_bucket}/t.arrow").split(workers)
        assert read_ids(shards) == list(range(180)), f"{workers} workers"


def test_arrow_driver_and_shards_read_no_batch_they_do_not_need(s3_server, s3_bucket, s3_gets) -> None:
    """12 batches of about 120 KiB, 4 shards of 3 batches: the driver reads the footer and the
    batches' message headers; a shard, its batches plus those, the footer and one read-ahead."""
    data = put_arrow(s3_server.filesystem(), f"{s3_bucket}/t.arrow", 12, 600, pad=200)
    DRIVER_READS.reset()
    shards = ArrowInputAdapter(f"s3://{s3_bucket}/t.arrow").split(4)
    assert [shard.limit for shard in shards] == [1800] * 4
    index = DRIVER_READS.bytes
    assert index < 12 * KIB < len(data) / 100, index

    s3_gets.clear()
    assert read_ids([shards[2]]) == list(range(3600, 5400))
    fetched = sum(count for _, count in s3_gets)
    assert fetched <= len(data) / 4 + 3 * index + ARROW_READ_AHEAD, (fetched, len(data))


def test_an_arrow_stream_on_s3_is_read_but_not_split(s3_server, s3_bucket) -> None:
    put_arrow(s3_server.filesystem(), f"{s3_bucket}/t.arrows", 4, 25, stream=True)
    url = f"s3://{s3_bucket}/t.arrows"
    assert read_ids([ArrowInputAdapter(url)]) == list(range(100))
    with pytest.raises(
        ShardingError, match=r"Arrow IPC stream on a URL, which cannot be split.*one shard each"
    ):
        ArrowInputAdapter(url).split(2)
