"""One CSV or JSON Lines object on moto's S3 server split into byte ranges (issue 16): every record
exactly once for 1 to 10 workers, the driver reads a few KiB per cut, and each shard reads its
own range by one streamed GET."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import s3fs
from fsspec.asyn import sync_wrapper

from zoopipe_core import (
    CSVInputAdapter,
    JSONInputAdapter,
    JSONOutputAdapter,
    MemoryOutputAdapter,
    Pipe,
    PipeManager,
)
from zoopipe_core.adapters.ranged import DRIVER_READS
from zoopipe_core.engines import MultiProcessEngine
from zoopipe_core.errors import ShardingError


def tricky_csv(rows: int) -> tuple[bytes, list[dict]]:
    """Quoted newlines (CRLF and LF), delimiters and doubled quotes in most rows."""
    text, records = "id,text\r\n", []
    for i in range(rows):
        value = [f'one\r\ntwo, "three" {i}', "plain", f"a,b\n\nc {'y' * (i % 40)}"][i % 3]
        cell = value if value == "plain" else '"' + value.replace('"', '""') + '"'
        text += f"{i},{cell}\r\n"
        records.append({"id": str(i), "text": value})
    return text.encode(), records


@pytest.fixture
def gets(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str | None]]:
    """(key, Range) of every GetObject this process makes through s3fs."""
    calls: list[tuple[str, str | None]] = []
    original = s3fs.S3FileSystem._call_s3

    async def recording(self: Any, method: str, *args: Any, **kwargs: Any) -> Any:
        if method == "get_object":
            calls.append((kwargs.get("Key"), kwargs.get("Range")))
        return await original(self, method, *args, **kwargs)

    monkeypatch.setattr(s3fs.S3FileSystem, "_call_s3", recording)
    monkeypatch.setattr(s3fs.S3FileSystem, "call_s3", sync_wrapper(recording))
    return calls


def read(adapter) -> list[dict]:
    out = MemoryOutputAdapter()
    assert Pipe(adapter, out).run().error_count == 0
    return out.records


def test_csv_object_shards_read_every_record_once_within_their_ranges(s3_server, s3_bucket, gets) -> None:
    data, records = tricky_csv(600)
    s3_server.filesystem().pipe(f"{s3_bucket}/tricky.csv", data)
    url = f"s3://{s3_bucket}/tricky.csv"
    for workers in range(1, 11):
        DRIVER_READS.reset()
        gets.clear()
        shards = CSVInputAdapter(url).split(workers)
        assert len(shards) == workers
        assert DRIVER_READS.bytes <= 4096 * workers + 4096 * (workers - 1), DRIVER_READS
        got = []
        for shard in shards:
            gets.clear()
            got += read(shard)
            if workers > 1:  # one GET streams the shard's range (S3Syncer.open_range), nothing more
                start, end = shard.byte_range
                assert gets == [("tricky.csv", f"bytes={start}-{end - 1}")], (gets, shard.byte_range)
        assert got == records, f"workers={workers}"


def test_json_lines_object_to_s3_output_with_the_multiprocess_engine(s3_server, s3_bucket) -> None:
    fs = s3_server.filesystem()
    lines = [json.dumps({"i": i, "note": "x" * (i % 30)}) for i in range(3000)]
    fs.pipe(f"{s3_bucket}/in/rows.jsonl", ("\n".join(lines) + "\n").encode())
    pipe = Pipe(
        JSONInputAdapter(f"s3://{s3_bucket}/in/rows.jsonl"), JSONOutputAdapter(f"s3://{s3_bucket}/out.jsonl")
    )
    manager = PipeManager.parallelize_pipe(
        pipe, workers=4, should_merge=True, engine=MultiProcessEngine(max_workers=2)
    )
    assert [p.input_adapter.byte_range is not None for p in manager.pipes] == [True] * 4
    report = manager.run(show_progress=False)
    assert report.success_count == 3000
    got = [json.loads(line)["i"] for line in fs.cat(f"{s3_bucket}/out.jsonl").decode().splitlines()]
    assert got == list(range(3000))


def test_a_missing_or_compressed_object_is_a_sharding_error(s3_server, s3_bucket) -> None:
    with pytest.raises(
        ShardingError, match=re.escape(f"cannot split s3://{s3_bucket}/nope.csv: no such file")
    ):
        CSVInputAdapter(f"s3://{s3_bucket}/nope.csv").split(3)
    s3_server.filesystem().pipe(f"{s3_bucket}/rows.csv.gz", b"\x1f\x8b\x08\x00")
    with pytest.raises(ShardingError, match="compressed"):
        CSVInputAdapter(f"s3://{s3_bucket}/rows.csv.gz").split(3)


def test_an_s3_shard_streams_its_range_by_one_get_and_stops_when_closed(s3_server, s3_bucket, gets) -> None:
    from zoopipe_s3.ranged import S3RangeStream

    from zoopipe_core.adapters.storage import open_input

    data = bytes(range(256)) * 40_000  # 10 MB
    s3_server.filesystem().pipe(f"{s3_bucket}/blob", data)
    url = f"s3://{s3_bucket}/blob"
    stream = open_input(url, (1000, 9_000_000)).file
    assert isinstance(stream, S3RangeStream), "the S3 plugin's open_range reads a shard"
    got = bytearray()
    while chunk := stream.read(1 << 20):
        got += chunk
    stream.close()
    assert bytes(got) == data[1000:9_000_000]
    assert gets == [("blob", "bytes=1000-8999999")]
    early = S3RangeStream(url, 0, len(data), chunk_size=1 << 16, ahead=2)
    assert early.read(10) == data[:10]
    early.close()  # the pump stops at its next chunk instead of reading the rest
    past_the_end = S3RangeStream(url, len(data) - 10, len(data) + 100)
    with pytest.raises(OSError, match="shorter than when the run was planned"), past_the_end:
        past_the_end.read()


def test_a_quoted_csv_object_to_an_s3_output_with_the_multiprocess_engine(s3_server, s3_bucket) -> None:
    fs = s3_server.filesystem()
    data, records = tricky_csv(2000)
    fs.pipe(f"{s3_bucket}/in/tricky.csv", data)
    out = f"s3://{s3_bucket}/out/tricky.jsonl"
    pipe = Pipe(CSVInputAdapter(f"s3://{s3_bucket}/in/tricky.csv"), JSONOutputAdapter(out))
    manager = PipeManager.parallelize_pipe(
        pipe, workers=5, should_merge=True, engine=MultiProcessEngine(max_workers=2)
    )
    assert len(manager.pipes) == 5
    assert manager.run(show_progress=False).success_count == len(records)
    assert [
        json.loads(line) for line in fs.cat(f"{s3_bucket}/out/tricky.jsonl").decode().splitlines()
    ] == records
