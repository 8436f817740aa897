"""Python-side adapters: records from any iterable, records into a list."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from zoopipe_core.adapters.base import BatchWriter, InputAdapter, OutputAdapter


class PyGeneratorInputAdapter(InputAdapter):
    """Records from any iterable of dicts (a list, a generator, a database cursor).

    Example:
        >>> batches = PyGeneratorInputAdapter(({"n": i} for i in range(5))).iter_batches(2)
        >>> [len(b) for b in batches]
        [2, 2, 1]
    """

    name = "generator"

    def __init__(self, iterable: Iterable[dict[str, Any]], *, name: str = "generator") -> None:
        self.iterable = iterable
        self._name = name

    @property
    def source_name(self) -> str:
        return self._name

    def split(self, workers: int) -> list[InputAdapter]:
        from zoopipe_core.errors import ShardingError

        raise ShardingError(
            "records from a Python iterable exist only in this process and cannot be split across "
            "workers; write them to a file (JSON Lines, CSV) and parallelize a pipe reading that file"
        )

    def iter_batches(self, batch_size: int) -> Iterator[list[dict[str, Any]]]:
        iterator = iter(self.iterable)
        while batch := list(islice(iterator, batch_size)):
            yield batch


class _ListWriter(BatchWriter):
    def __init__(self, target: MemoryOutputAdapter) -> None:
        self.target = target
        self.staged: list[dict[str, Any]] = []

    def write_batch(self, records: list[dict[str, Any]]) -> None:
        self.staged.extend(records)

    def commit(self) -> None:
        self.target.records.extend(self.staged)
        self.staged = []

    def abort(self) -> None:
        self.staged = []


class MemoryOutputAdapter(OutputAdapter):
    """Collects records in `records`; they appear only when the run succeeds.

    Example:
        >>> out = MemoryOutputAdapter()
        >>> w = out.open_writer(); w.write_batch([{"a": 1}]); out.records
        []
        >>> w.commit(); out.records
        [{'a': 1}]
    """

    name = "memory"

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def open_writer(self) -> BatchWriter:
        return _ListWriter(self)
