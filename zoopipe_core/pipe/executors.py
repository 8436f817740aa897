"""How a pipe uses threads. Both executors overlap reading, the Python stage and writing;
they differ in how many threads encode output. Output order always equals input order."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class SingleThreadExecutor:
    """One reader, the Python stage on the calling thread, one encoder-writer.

    Example:
        >>> SingleThreadExecutor(batch_size=500).batch_size
        500
    """

    batch_size: int = 1000

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")

    @property
    def encode_workers(self) -> int:
        return 1


@dataclass(frozen=True)
class MultiThreadExecutor:
    """Like SingleThreadExecutor, with `max_workers` threads encoding output batches in parallel.

    Python work still runs under one GIL; the gain is in serialisation, which is Rust.

    Example:
        >>> MultiThreadExecutor(max_workers=2, batch_size=1000).encode_workers
        2
    """

    max_workers: int | None = None
    batch_size: int = 1000

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.max_workers is not None and self.max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {self.max_workers}")

    @property
    def encode_workers(self) -> int:
        return self.max_workers or os.cpu_count() or 1


Executor = SingleThreadExecutor | MultiThreadExecutor
