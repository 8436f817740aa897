"""Where a PipeManager merges its shards' parts: in the driver when they are its local files,
otherwise as one task on the run's engine, so no part byte passes through the driver.

Every merge of parts on a store runs on a worker: Parquet and Arrow (row groups and record
batches streamed through pyarrow), compressed CSV, and also JSON Lines and CSV merged on S3 itself
(``UploadPartCopy``), whose parts under S3's 5 MiB minimum are read and sent again by the process
that merges. The driver only waits for the task: it sends no S3 request for the merge at all.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
from collections.abc import Callable, Sequence
from typing import Any

from zoopipe_core.adapters.base import OutputAdapter
from zoopipe_core.adapters.merge import merges_in_place
from zoopipe_core.engines import Engine

#: Seconds between two looks at whether the run is stopping, while a merge task runs.
POLL = 0.25


class MergeStopped(Exception):
    """The run was stopped while a merge task ran: the task was cancelled, nothing published."""


def merge_task(target: OutputAdapter, parts: Sequence[OutputAdapter]) -> None:
    """What a worker runs: merge ``parts`` into ``target`` (``target.merge_parts``: published
    atomically, the parts removed). A module-level function, so every engine can ship it.

    Example:
        >>> import os, tempfile
        >>> from zoopipe_core import JSONOutputAdapter
        >>> target = JSONOutputAdapter(os.path.join(tempfile.mkdtemp(), "all.jsonl"))
        >>> parts = [target.shard(i) for i in range(2)]
        >>> for i, part in enumerate(parts):
        ...     _ = open(part.path, "w").write(f'{{"i": {i}}}\\n')
        >>> merge_task(target, parts); open(target.path).read()
        '{"i": 0}\\n{"i": 1}\\n'
    """
    target.merge_parts(list(parts))


def run_merge(
    engine: Engine,
    target: OutputAdapter,
    parts: Sequence[OutputAdapter],
    submit: Callable[..., concurrent.futures.Future[Any] | None],
    stopping: Callable[[], bool],
) -> None:
    """Merge ``parts`` into ``target``: here when :func:`merges_in_place` says so, otherwise as
    one task given to ``submit`` (the manager's, which refuses once the run is stopping) and
    waited for. Raises the merge's own error when it failed, :class:`MergeStopped` when
    ``stopping()`` became true first (the task is cancelled; a cancelled merge publishes nothing).
    """
    if merges_in_place(target, parts):
        target.merge_parts(list(parts))
        return
    future = submit(merge_task, target, list(parts))
    if future is None:
        raise MergeStopped(f"the run was stopped before merging {getattr(target, 'path', target)}")
    while not future.done():
        if stopping():
            # Asks the task to stop: its publish aborts, nothing appears. An engine the stop
            # already shut down has cancelled it itself (and may refuse the call).
            with contextlib.suppress(Exception):
                engine.cancel(future)
            break
        concurrent.futures.wait([future], timeout=POLL)
    if not future.done():
        concurrent.futures.wait([future])  # the engine resolves a cancelled future promptly
    if future.cancelled():
        raise MergeStopped(f"the run was stopped while merging {getattr(target, 'path', target)}")
    future.result()
