"""What the table inputs (Parquet, Arrow IPC) share: their read options and splitting one file
into row ranges, each read as ``skip_rows``/``limit`` of the file. The readers (Rust) turn those
into the row groups or record batches to read, so a shard of a file on an object store fetches
only its own byte ranges and the footer.

Each format counts its own rows (:func:`zoopipe_core.adapters.parquet.parquet_group_rows`,
:func:`zoopipe_core.adapters.arrow.arrow_batch_rows`); :func:`row_ranges` cuts them into shards.
"""

from __future__ import annotations

import bisect
import copy
import importlib
import itertools
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from zoopipe_core.adapters.files import FileListInput, check_workers, refuse_skip_rows_and_limit
from zoopipe_core.adapters.native_spec import ArrowSource, ParquetSource
from zoopipe_core.adapters.read_options import ReadOptions
from zoopipe_core.errors import ShardingError


class TableFileInput(ReadOptions, FileListInput):
    """What the Parquet and Arrow inputs share: ``columns``/``skip_rows``/``limit`` applied by the
    Rust reader, a native spec of class ``spec_class``, and one path or a list of paths.

    As for CSV and JSON Lines (:class:`~zoopipe_core.adapters.files.FileListInput`), a list is read by
    ``PipeManager.parallelize_pipe``, one shard per file, and a single pipe given several files
    fails saying so. One file is split by rows: subclasses implement ``split_one_file(workers)``,
    usually with :func:`split_rows`.

    Example:
        >>> from zoopipe_core import ParquetInputAdapter
        >>> files = ParquetInputAdapter(["a.parquet", "b.parquet"], columns=["id"])
        >>> files, [(shard.path, shard.columns) for shard in files.split(8)]
        (ParquetInputAdapter(['a.parquet', 'b.parquet']), [('a.parquet', ['id']), ('b.parquet', ['id'])])
    """

    spec_class: ClassVar[type[ParquetSource] | type[ArrowSource]]

    def __init__(
        self,
        path: Any,
        *,
        columns: Sequence[str] | None = None,
        skip_rows: int = 0,
        limit: int | None = None,
    ) -> None:
        self._set_read_options(
            columns=columns, skip_rows=skip_rows, limit=limit, byte_range=None, line_offset=0
        )
        self.path = self._take_paths(path)  # a list of files is read by PipeManager.parallelize_pipe

    @property
    def source_name(self) -> str:
        return self.path

    def can_split_file(self, path: str) -> bool:
        """A file of a multi-file input, local or on a URL, is cut into row ranges when larger
        than its share: the driver reads only its footer, and a shard of a URL fetches only its
        own row groups or record batches."""
        return True

    def native_spec(self) -> ParquetSource | ArrowSource:
        self._check_single_file()
        return self.spec_class(url=self.path, name=self.path, read=self._read_spec())

    def __repr__(self) -> str:
        shown = self.paths if len(self.paths) > 1 else self.path
        return f"{type(self).__name__}({shown!r})"


def import_pyarrow(purpose: str, module: str = "pyarrow.parquet") -> Any:
    """``module`` of pyarrow (optional for zoopipe), or ShardingError saying what needs it.

    Example:
        >>> import_pyarrow("reading row group sizes").__name__
        'pyarrow.parquet'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ShardingError(f"{purpose} needs pyarrow: pip install pyarrow") from exc


def row_ranges(group_rows: Sequence[int], workers: int) -> list[tuple[int, int]]:
    """``(first_row, row_count)`` per shard: whole row groups when there are at least as many
    groups as workers, otherwise rows cut evenly, ignoring group boundaries.

    Example:
        >>> row_ranges([10, 10, 10, 10], 2), row_ranges([10], 3)
        ([(0, 20), (20, 20)], [(0, 4), (4, 3), (7, 3)])
    """
    total = sum(group_rows)
    if total == 0:
        return [(0, 0)]
    if len(group_rows) >= workers:
        return _whole_group_ranges(group_rows, workers)
    size, extra = divmod(total, workers)
    ranges, start = [], 0
    for shard in range(min(workers, total)):
        count = size + (1 if shard < extra else 0)
        ranges.append((start, count))
        start += count
    return ranges


def _whole_group_ranges(group_rows: Sequence[int], workers: int) -> list[tuple[int, int]]:
    """Cut between groups at the boundary nearest each shard's share of the rows (the later
    one on a tie), leaving at least one group for each shard.

    Example:
        >>> _whole_group_ranges([10, 10, 10, 10, 1, 1], 2)
        [(0, 20), (20, 22)]
    """
    starts = list(itertools.accumulate(group_rows, initial=0))  # starts[g]: rows before group g
    cuts = [0]
    for shard in range(1, workers):
        target = starts[-1] * shard / workers
        lowest, highest = cuts[-1] + 1, len(group_rows) - (workers - shard)
        after = min(bisect.bisect_left(starts, target, lowest, highest + 1), highest)
        before = max(after - 1, lowest)
        closer_before = target - starts[before] < starts[after] - target
        cuts.append(before if closer_before else after)
    cuts.append(len(group_rows))
    return [(starts[a], starts[b] - starts[a]) for a, b in itertools.pairwise(cuts)]


def split_rows(adapter: Any, workers: int, group_rows: Callable[[str], list[int]], kind: str) -> list[Any]:
    """Copies of ``adapter`` reading ``row_ranges(group_rows(path), workers)`` through
    ``skip_rows``/``limit`` (which the Rust readers apply keeping the file's row numbers)."""
    check_workers(workers)
    refuse_skip_rows_and_limit(adapter)
    try:
        rows = group_rows(adapter.path)
    except (OSError, ValueError) as exc:  # missing file; pyarrow's ArrowInvalid is a ValueError
        raise ShardingError(
            f"cannot split {adapter.path} into shards: it could not be read as {kind} ({exc}). "
            "Check that the file exists and is complete"
        ) from exc
    shards = []
    for first, count in row_ranges(rows, workers):
        shard = copy.copy(adapter)
        shard.skip_rows, shard.limit = first, count
        shards.append(shard)
    return shards
