"""S3Upload, how every output on an s3:// URL is written: parts are sent in the background,
``max_pending`` at a time, completed in order by commit(); a failed part is raised and the
upload aborted; discard() leaves nothing. Against moto's S3 server (tests/s3_server.py); the
``network`` fixture slows part uploads down (a real delay before each request is sent) so that
what runs concurrently is observable."""

from __future__ import annotations

import asyncio
import os
import time
from types import SimpleNamespace
from typing import Any

import pytest
import s3fs
from fsspec.asyn import sync_wrapper
from s3_server import s3_keys, s3_pending_uploads
from zoopipe_s3.upload import S3Upload

PART = 5 << 20  # S3's smallest part: the smallest multipart outputs


@pytest.fixture
def network(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """Every ``upload_part`` of this process waits ``delay`` seconds before it is sent, records
    when it ran (``spans``: part number, start, end) and how many ran at once (``most``); the
    part numbered ``fail`` fails as a reset connection would. With ``together=N``, a part also
    waits (10 s at most) until N parts have been in flight at once: concurrency is then observed
    whatever the machine's load, and sequential uploads would never reach N."""
    net = SimpleNamespace(delay=0.3, fail=None, spans=[], running=0, most=0, together=0)
    original = s3fs.S3FileSystem._call_s3

    async def call(self: Any, method: str, *args: Any, **kwargs: Any) -> Any:
        if method != "upload_part":
            return await original(self, method, *args, **kwargs)
        start = time.monotonic()
        net.running += 1  # on fsspec's event loop: one thread, no race
        net.most = max(net.most, net.running)
        try:
            await asyncio.sleep(net.delay)
            deadline = time.monotonic() + 10
            while net.most < net.together and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            if kwargs["PartNumber"] == net.fail:
                raise ConnectionResetError("connection reset by peer")
            return await original(self, method, *args, **kwargs)
        finally:
            net.running -= 1
            net.spans.append((kwargs["PartNumber"], start, time.monotonic()))

    monkeypatch.setattr(s3fs.S3FileSystem, "_call_s3", call)
    monkeypatch.setattr(s3fs.S3FileSystem, "call_s3", sync_wrapper(call))
    return net


def test_parts_are_sent_in_the_background_concurrently_and_completed_in_order(s3_server, s3_bucket, network):
    network.together = 3  # the three full parts, sent by write()
    fs = s3_server.filesystem()
    data = os.urandom(3 * PART + 12345)
    upload = S3Upload(fs, f"{s3_bucket}/big.bin", part_size=PART, max_pending=4)
    for offset in range(0, len(data), 1 << 20):  # 1 MiB writes, as the pipeline's writer does
        upload.write(data[offset : offset + (1 << 20)])
    assert upload.pending == 3, "write() should return with the three full parts still in flight"
    assert s3_keys(s3_server, s3_bucket) == []
    upload.commit()
    assert fs.cat_file(f"{s3_bucket}/big.bin") == data
    assert network.most >= 3, "the full parts should travel at the same time"
    assert sorted(n for n, _, _ in network.spans) == [1, 2, 3, 4]
    assert s3_pending_uploads(s3_server, s3_bucket) == []


def test_write_waits_only_while_max_pending_parts_are_in_flight(s3_server, s3_bucket, network):
    """Memory stays at most (max_pending + 1) parts: write() blocks on the bound, never beyond."""
    network.delay = 0.2
    fs = s3_server.filesystem()
    data = os.urandom(6 * PART + 1)
    upload = S3Upload(fs, f"{s3_bucket}/bounded.bin", part_size=PART, max_pending=2)
    for offset in range(0, len(data), 1 << 20):
        upload.write(data[offset : offset + (1 << 20)])
        assert upload.pending <= 2 and upload.buffered <= PART
    assert upload.peak_pending == 2 and network.most == 2
    upload.commit()
    assert fs.cat_file(f"{s3_bucket}/bounded.bin") == data


def test_the_part_size_doubles_every_parts_per_size_parts(s3_server, s3_bucket, s3_calls):
    """So that S3's 10,000 parts do not cap an output at 10,000 small parts."""

    class Growing(S3Upload):
        parts_per_size = 2

    fs = s3_server.filesystem()
    data = os.urandom(4 * PART + 1)
    upload = Growing(fs, f"{s3_bucket}/growing.bin", part_size=PART)
    for offset in range(0, len(data), 1 << 20):
        upload.write(data[offset : offset + (1 << 20)])
    upload.commit()
    sent = sorted(
        (kw["PartNumber"], len(kw["Body"])) for method, kw, _ in s3_calls if method == "upload_part"
    )
    assert sent == [(1, PART), (2, PART), (3, 2 * PART), (4, 1)]
    assert fs.cat_file(f"{s3_bucket}/growing.bin") == data


@pytest.mark.parametrize("size", [0, 100, PART], ids=["empty", "small", "exactly-one-part"])
def test_an_output_of_at_most_one_part_is_one_put(s3_server, s3_bucket, s3_calls, size):
    fs = s3_server.filesystem()
    upload = S3Upload(fs, f"{s3_bucket}/small.bin", part_size=PART)
    upload.write(b"s" * size)
    assert s3_calls == []
    upload.commit()
    assert [method for method, _, _ in s3_calls] == ["put_object"]
    assert fs.cat_file(f"{s3_bucket}/small.bin") == b"s" * size


def test_a_failed_part_is_raised_with_its_number_and_the_upload_aborted(s3_server, s3_bucket, network):
    network.fail = 2
    fs = s3_server.filesystem()
    upload = S3Upload(fs, f"{s3_bucket}/failing.bin", part_size=PART, max_pending=4)
    upload.write(b"f" * (3 * PART + 1))
    time.sleep(network.delay + 0.5)  # the parts have ended
    message = rf"could not upload part 2 \({PART} bytes\) of s3://{s3_bucket}/failing.bin: connection reset"
    with pytest.raises(OSError, match=message):
        upload.write(b"more")
    with pytest.raises(OSError, match=message):
        upload.commit()
    # commit() discarded the upload: parts 1 and 3, which S3 holds, are gone with it.
    assert s3_pending_uploads(s3_server, s3_bucket) == []
    assert s3_keys(s3_server, s3_bucket) == []
    upload.discard()  # again: nothing to do


def test_discard_with_parts_in_flight_leaves_nothing(s3_server, s3_bucket, s3_calls, network):
    fs = s3_server.filesystem()
    fs.pipe_file(f"{s3_bucket}/out.bin", b"old")
    upload = S3Upload(fs, f"{s3_bucket}/out.bin", part_size=PART, max_pending=4)
    upload.write(b"d" * (3 * PART + 1))
    assert upload.pending == 3
    upload.discard()
    assert upload.pending == 0, "discard() should wait for the parts in flight"
    methods = [method for method, _, _ in s3_calls]
    assert methods[-1] == "abort_multipart_upload" and methods.count("upload_part") == 3
    assert s3_pending_uploads(s3_server, s3_bucket) == []
    assert s3_keys(s3_server, s3_bucket) == ["out.bin"] and fs.cat_file(f"{s3_bucket}/out.bin") == b"old"
    with pytest.raises(ValueError, match="already committed or discarded"):
        upload.write(b"late")


def test_part_size_below_s3s_minimum_is_refused(s3_server, s3_bucket):
    with pytest.raises(ValueError, match="part_size must be at least 5242880"):
        S3Upload(s3_server.filesystem(), f"{s3_bucket}/x", part_size=1 << 20)
