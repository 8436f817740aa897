"""How many shards each file of a multi-file input becomes, so shards are balanced by bytes.

A pure function of the file sizes: :func:`pieces_per_file`. The adapters call it from
``split(workers)`` (:class:`~zoopipe_core.adapters.files.FileListInput`) and cut each file into
that many pieces with their own splitter (byte ranges, row ranges).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

# A file up to this fraction above the share stays whole: one more shard costs a process start.
SLACK = 0.1


def pieces_per_file(sizes: Sequence[int], workers: int, splittable: Sequence[bool]) -> list[int]:
    """Pieces per file so that every piece holds about ``sum(sizes) / workers`` bytes.

    Each file is at least one shard (a shard reads one file), so small files are not grouped:
    with more files than workers every file is one shard, and the engine runs ``workers`` at
    once. A file larger than the share (by more than :data:`SLACK`) is cut into
    ``ceil(size / share)`` pieces, at most ``workers``, when ``splittable`` says its format and
    storage can be cut; otherwise it stays whole.

    Example:
        >>> pieces_per_file([100, 10, 10], 4, [True, True, True])
        [4, 1, 1]
        >>> pieces_per_file([100, 10, 10], 4, [False, True, True])
        [1, 1, 1]
    """
    if len(sizes) != len(splittable):
        raise ValueError(f"{len(sizes)} sizes but {len(splittable)} splittable flags")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if any(size < 0 for size in sizes):
        raise ValueError(f"file sizes are >= 0, got {list(sizes)}")
    total = sum(sizes)
    if total == 0:
        return [1] * len(sizes)
    share = total / workers
    return [
        min(workers, max(1, math.ceil(size / share - SLACK))) if can_split else 1
        for size, can_split in zip(sizes, splittable, strict=True)
    ]
