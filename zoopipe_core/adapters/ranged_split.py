"""Byte ranges of a CSV or JSON Lines file on a URL (``s3://``, ``memory://``, any fsspec
filesystem), planned from small windows, so the driver never pulls the file through itself.

For each of the ``n - 1`` cut targets (``size * k / n`` past the data start) the driver reads a
window of :data:`WINDOW` bytes starting one byte before the target (doubling it, up to
:data:`MAX_WINDOW`, while undecided) through :func:`~zoopipe_core.adapters.ranged.read_range`
and asks the Rust scanner for the first record start in it
(``zoopipe_core._native.record_start``): after the next newline for JSON Lines (exact); for CSV
a start that every possible quote state before the window leads to, or failing that the reading
the field counts do not refute (``core-rs/exec/src/cut.rs``). An undecided cut is dropped: its
neighbours merge into one shard, which is always correct. A CSV header is read once, from the
first window, and its names travel with the shards, which read their ranges without a header.

Lines: the first shard starts right after the header, so its error records carry the file's
true lines. A later shard cannot know how many lines precede it without reading them: its error
records name the range (``s3://b/data.csv [bytes 1048576..2097152]``) and count lines from its
start. A shard whose range ends at a cut fails, naming the offset, if the cut fell inside a
quoted field after all, instead of mis-reading a record.

Example:
    >>> import fsspec
    >>> rows = "".join(f'{i},"line {i}\\nstill {i}"\\n' for i in range(300))
    >>> fsspec.filesystem("memory").pipe("/ranged-split-doc/data.csv", ("id,text\\n" + rows).encode())
    >>> plan = plan_ranges("memory://ranged-split-doc/data.csv", "csv", 3)
    >>> plan.fields, plan.line_offset, len(plan.ranges), plan.ranges[0][0], plan.ranges[-1][1]
    (['id', 'text'], 1, 3, 8, 7178)
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from typing import Any

from zoopipe_core.adapters.ranged import object_size, read_range
from zoopipe_core.errors import ShardingError

#: The first window read around a cut, and the most it grows to before the cut is given up.
WINDOW = 4 << 10
MAX_WINDOW = 1 << 20
_COMPRESSED_MAGIC = {b"\x1f\x8b": "gzip", b"\x28\xb5\x2f\xfd": "zstd"}


@dataclass(frozen=True)
class RangePlan:
    """Contiguous byte ranges covering a file's data in order; ``line_offset``: lines before the
    first range; ``fields``: a CSV file's first record (the header's names), None for JSON Lines.

    Example:
        >>> RangePlan([(8, 20), (20, 31)], 1, ["id", "name"]).ranges[1]
        (20, 31)
    """

    ranges: list[tuple[int, int]]
    line_offset: int
    fields: list[str] | None


def _grow(url: str, start: int, size: int, window: bytes) -> bytes | None:
    """``window`` (the bytes from ``start``) doubled, or None at the end of the file or cap."""
    have = start + len(window)
    if have >= size or len(window) >= MAX_WINDOW:
        return None
    return window + read_range(url, have, min(start + 2 * max(len(window), 1), size))


def _head(url: str, size: int, kind: str, options: dict[str, Any]) -> tuple[int, int, list[str] | None]:
    """(data start, lines before it, the CSV's first record) from the first window."""
    from zoopipe_core import _native

    # JSON Lines needs only the first bytes, to refuse a compressed object
    first = read_range(url, 0, min(WINDOW if kind == "csv" else 4, size))
    for magic, name in _COMPRESSED_MAGIC.items():
        if first.startswith(magic):
            raise ShardingError(
                f"{url} is {name}-compressed (by its first bytes): a compressed stream can only be read "
                "from its start, so it cannot be split between workers. Decompress it, or pass a list "
                "of files (one shard each)"
            )
    if kind != "csv":
        return 0, 0, None
    window: bytes | None = first
    while window is not None:
        head = _native.csv_head(window, len(window) >= size, **options)
        if head is not None:
            return head
        window = _grow(url, 0, size, window)
    raise ShardingError(
        f"{url}: the first record does not end within its first {MAX_WINDOW} bytes (a quote left "
        "open in the header?); check the file, or pass a list of files (one shard each)"
    )


def _cut(url: str, target: int, size: int, kind: str, expected: int, options: dict[str, Any]) -> int | None:
    """The first record start at or after ``target``, or None when no window up to
    :data:`MAX_WINDOW` decides it."""
    from zoopipe_core import _native

    start = target - 1  # so that a record starting exactly at the target is seen
    window: bytes | None = read_range(url, start, min(start + WINDOW, size))
    while window is not None:
        at_eof = start + len(window) >= size
        found = _native.record_start(window, kind, expected, at_eof, **options)
        if found is not None:
            return start + found
        window = _grow(url, start, size, window)
    return None


def plan_ranges(
    url: str,
    kind: str,
    n: int,
    *,
    size: int | None = None,
    delimiter: str = ",",
    quotechar: str = '"',
    has_header: bool = True,
) -> RangePlan:
    """At most ``n`` byte ranges of the CSV (``kind="csv"``) or JSON Lines (``"jsonl"``) file at
    ``url``, cut at record starts found from small windows (see the module documentation).
    ``size``: the file's size if known (else read from its metadata)."""
    if size is None:
        size = object_size(url)
    options = {"delimiter": delimiter, "quotechar": quotechar}
    data_start, line_offset, fields = _head(url, size, kind, {**options, "has_header": has_header})
    expected = len(fields) if fields else 0
    cuts = set()
    for k in range(1, n):
        target = data_start + (size - data_start) * k // n
        if target > data_start:
            cut = _cut(url, target, size, kind, expected, options)
            if cut is not None and data_start < cut < size:
                cuts.add(cut)
    edges = [data_start, *sorted(cuts), size]
    return RangePlan(list(itertools.pairwise(edges)), line_offset, fields)


def split_url_file(adapter: Any, workers: int) -> list[Any]:
    """Shards of the uncompressed CSV or JSON Lines file on a URL that ``adapter`` reads: copies
    of it with ``byte_range`` set (and, for CSV, the header's names with ``has_header=False``).
    One worker, or a file with no cut found, is the adapter itself, read whole."""
    path = adapter.path
    if workers == 1:
        return [copy.copy(adapter)]
    try:
        size = adapter.sizes.get(path) if getattr(adapter, "sizes", None) else None
        options = adapter.split_options()
        plan = plan_ranges(path, adapter.split_kind, workers, size=size, **options)
    except FileNotFoundError as missing:
        raise ShardingError(
            f"cannot split {path}: no such file ({missing}); check the URL, and that the credentials "
            "and endpoint configured for its scheme can see it"
        ) from None
    if len(plan.ranges) <= 1:
        return [copy.copy(adapter)]
    names = _csv_names(adapter, plan) if adapter.split_kind == "csv" else None
    shards = []
    for index, (start, end) in enumerate(plan.ranges):
        shard = copy.copy(adapter)
        shard.byte_range = (start, end)
        shard.line_offset = plan.line_offset if index == 0 else 0
        shard.ends_at_cut = index < len(plan.ranges) - 1
        shard.lines_from_range_start = index > 0
        if names is not None:
            shard.has_header, shard.field_names = False, names
        shards.append(shard)
    return shards


def _csv_names(adapter: Any, plan: RangePlan) -> list[str]:
    """The columns of a CSV's shards: the adapter's ``field_names`` (which must match the
    header's width), or the header's names."""
    header = plan.fields or []
    given = adapter.field_names
    if given is None:
        return header
    if adapter.has_header and len(given) != len(header):
        raise ShardingError(
            f"{adapter.path}: field_names has {len(given)} names but the header has {len(header)} columns; "
            "give one name per column"
        )
    return list(given)
