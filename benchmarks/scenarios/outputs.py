"""Cheap checks on output files that may be hundreds of MB: line counts and head/tail samples."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

READ_CHUNK_BYTES = 1 << 22
TAIL_BYTES = 1 << 16


def count_lines(path: Path) -> int:
    """Number of non-empty lines, whether or not the file ends with a newline."""
    lines = 0
    last = b"\n"
    with path.open("rb") as handle:
        while chunk := handle.read(READ_CHUNK_BYTES):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (last != b"\n")


def sample_json_lines(path: Path, head: int = 2000) -> list[object]:
    """The first ``head`` lines and the complete lines of the last 64 KiB, parsed as JSON."""
    with path.open("rb") as handle:
        head_lines = list(itertools.islice(handle, head))
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - TAIL_BYTES))
        tail_lines = handle.read().splitlines()[1:] if size > TAIL_BYTES else []
    return [json.loads(line) for line in head_lines + tail_lines if line.strip()]
