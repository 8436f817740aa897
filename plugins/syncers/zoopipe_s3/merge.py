"""Merging objects on S3 itself: the parts of a sharded output become one object through a
multipart upload whose parts S3 copies from the part objects (``UploadPartCopy``, with a byte
range), so the merged bytes never travel through this process.

S3 wants every part of an upload but the last to hold at least 5 MiB (:data:`MIN_PART`) and none
more than 5 GiB (:data:`MAX_PART`), and a part is copied from one source range only. So
:func:`plan_parts` copies each range of 5 MiB or more server-side (split when over 5 GiB), and
assembles runs of smaller ranges here, read with ranged GETs and sent as one uploaded part once
they reach 5 MiB, topped up if need be from the start of the next large range (whose remainder
is still copied). Only ranges under 5 MiB (and at most 5 MiB of a large range after them) are
read, so a merge of large shards reads nothing, and memory stays under 2 x 5 MiB per part sent.

The upload is completed last, only when every part was copied: the merged object appears whole
or not at all; any failure aborts the upload, which deletes the parts already copied.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from fsspec.core import url_to_fs

_log = logging.getLogger(__name__)

#: The least bytes S3 accepts in a part of a multipart upload, but the last.
MIN_PART = 5 << 20
#: The most bytes S3 copies into one part (``UploadPartCopy``).
MAX_PART = 5 << 30
#: The most parts S3 takes in one multipart upload.
MAX_PARTS = 10_000
#: Parts sent at the same time.
CONCURRENCY = 8


@dataclasses.dataclass(frozen=True)
class Range:
    """Bytes ``start`` to ``end`` (excluded) of the object at ``path`` (bucket/key).

    Example:
        >>> Range("bucket/out.part-00001.csv", 6, 1030).size
        1024
    """

    path: str
    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclasses.dataclass(frozen=True)
class Part:
    """One part of the merged object: ``copy`` is copied by S3 itself; ``read`` ranges are read
    here and sent concatenated (small ranges, which S3 cannot take as parts of their own).

    Example:
        >>> Part(read=(Range("b/a", 0, 300), Range("b/c", 0, 5))).size
        305
    """

    copy: Range | None = None
    read: tuple[Range, ...] = ()

    @property
    def size(self) -> int:
        return self.copy.size if self.copy is not None else sum(r.size for r in self.read)


def plan_parts(ranges: Sequence[Range], min_part: int = MIN_PART, max_part: int = MAX_PART) -> list[Part]:
    """The parts that make ``ranges`` (empty ones dropped) one object, in order: every part but
    the last at least ``min_part`` bytes, copies at most ``max_part``.

    Example (sizes in MiB-like units; a and c are large, b small):
        >>> a, b, c = Range("k/a", 0, 12), Range("k/b", 2, 4), Range("k/c", 0, 9)
        >>> for part in plan_parts([a, b, c], min_part=5, max_part=10):
        ...     print(part.copy or [(r.path, r.start, r.end) for r in part.read])
        Range(path='k/a', start=0, end=6)
        Range(path='k/a', start=6, end=12)
        [('k/b', 2, 4), ('k/c', 0, 3)]
        Range(path='k/c', start=3, end=9)
    """
    parts: list[Part] = []
    small: list[Range] = []
    ranges = [r for r in ranges if r.size > 0]
    for index, piece in enumerate(ranges):
        last = index == len(ranges) - 1
        if small:
            need = min_part - sum(r.size for r in small)
            if piece.size - need >= min_part or (last and piece.size > need):
                # Top the small run up to min_part from this range's start; copy the rest.
                small.append(Range(piece.path, piece.start, piece.start + need))
                parts.append(Part(read=tuple(small)))
                small = []
                piece = Range(piece.path, piece.start + need, piece.end)
            else:
                small.append(piece)
                if need <= piece.size:
                    parts.append(Part(read=tuple(small)))
                    small = []
                continue
        if piece.size >= min_part or last:
            parts.extend(Part(copy=r) for r in _split(piece, max_part))
        else:
            small = [piece]
    if small:
        parts.append(Part(read=tuple(small)))
    return parts


def _split(piece: Range, max_part: int) -> list[Range]:
    """``piece`` in equal slices of at most ``max_part`` bytes (each at least half of it)."""
    count = -(-piece.size // max_part)
    step = -(-piece.size // count)
    return [Range(piece.path, s, min(s + step, piece.end)) for s in range(piece.start, piece.end, step)]


def merge_objects(target: str, parts: Sequence[tuple[str, int]]) -> None:
    """Publish at the S3 URL ``target`` the bytes of each part URL from its offset on, in order,
    copied by S3; atomically, and leaving no upload behind if any part fails."""
    fs, target_path = url_to_fs(target)
    paths = [url_to_fs(url)[1] for url, _ in parts]
    with ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="zoopipe-s3-merge") as pool:
        infos = list(pool.map(lambda path: fs.info(path, refresh=True), paths))
        etags = {path: info.get("ETag") for path, info in zip(paths, infos, strict=True)}
        ranges = [
            Range(path, min(start, info["size"]), info["size"])
            for path, (_, start), info in zip(paths, parts, infos, strict=True)
        ]
        plan = plan_parts(ranges, MIN_PART, MAX_PART)
        if len(plan) > MAX_PARTS:
            raise OSError(
                f"cannot merge {len(parts)} parts into {target}: S3 takes at most {MAX_PARTS} parts in "
                f"one upload and this merge needs {len(plan)}; run fewer shards"
            )
        bucket, key, _ = fs.split_path(target_path)
        if not plan:
            fs.pipe_file(target_path, b"")
            return
        upload = fs.call_s3("create_multipart_upload", Bucket=bucket, Key=key)
        ids = {"Bucket": bucket, "Key": key, "UploadId": upload["UploadId"]}
        sends = [
            pool.submit(_send, fs, ids, number, part, etags, target) for number, part in enumerate(plan, 1)
        ]
        try:
            sent = [{"PartNumber": number, "ETag": send.result()} for number, send in enumerate(sends, 1)]
            fs.call_s3("complete_multipart_upload", MultipartUpload={"Parts": sent}, **ids)
        except BaseException:
            for send in sends:
                send.cancel()
            wait(sends)
            _abort(fs, ids, target)
            raise
    fs.invalidate_cache(target_path)


def _abort(fs: Any, ids: dict[str, Any], target: str) -> None:
    """Abort the upload, which deletes the parts sent; a failure to abort is logged, so that the
    error that made the merge fail is the one raised."""
    try:
        fs.call_s3("abort_multipart_upload", **ids)
    except Exception as exc:
        _log.error("could not abort the multipart upload %s of %s: %s", ids["UploadId"], target, exc)


def _send(fs: Any, ids: dict[str, Any], number: int, part: Part, etags: dict[str, Any], target: str) -> str:
    """Send part ``number``; its ETag. A source changed since it was measured fails the copy."""
    piece = part.copy
    try:
        if piece is not None:
            bucket, key, _ = fs.split_path(piece.path)
            source: dict[str, Any] = {"Bucket": bucket, "Key": key}
            condition = {"CopySourceIfMatch": etags[piece.path]} if etags.get(piece.path) else {}
            copied = fs.call_s3(
                "upload_part_copy",
                PartNumber=number,
                CopySource=source,
                CopySourceRange=f"bytes={piece.start}-{piece.end - 1}",
                **condition,
                **ids,
            )
            return str(copied["CopyPartResult"]["ETag"])
        body = b"".join(fs.cat_file(r.path, start=r.start, end=r.end) for r in part.read)
        uploaded = fs.call_s3("upload_part", PartNumber=number, Body=body, **ids)
        return str(uploaded["ETag"])
    except Exception as exc:
        what = piece.path if piece is not None else ", ".join(r.path for r in part.read)
        raise OSError(f"could not merge s3://{what} into {target} (part {number}): {exc}") from exc
