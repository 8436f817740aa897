"""Shard planning for ``PipeManager.parallelize_pipe``: one pipe becomes a pipe per shard of its
input, each writing its own part of every output, and the merges to do once all succeeded.

The splitting and merging themselves belong to the adapters (``InputAdapter.split``,
``OutputAdapter.shard`` and ``merge_parts``; see :mod:`zoopipe_core.adapters.files` and
:mod:`zoopipe_core.adapters.merge`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from zoopipe_core.adapters.base import OutputAdapter
from zoopipe_core.adapters.dataset import check_dataset_target, dataset_part, writes_dataset
from zoopipe_core.adapters.files import check_workers
from zoopipe_core.errors import ShardingError
from zoopipe_core.pipe.pipe import Pipe


@dataclass
class ShardPlan:
    """What parallelize_pipe runs: one pipe per shard, the merges to do after them
    (``should_merge=True``), and the outputs whose parts form a directory dataset
    (``should_merge=False`` with Parquet: :mod:`zoopipe_core.adapters.dataset`), each with its parts.

    Example:
        >>> from zoopipe_core import Pipe, JSONInputAdapter, JSONOutputAdapter
        >>> pipe = Pipe(JSONInputAdapter(["a.jsonl", "b.jsonl"]), JSONOutputAdapter("out.jsonl"))
        >>> plan = plan_shards(pipe, workers=2, should_merge=True)
        >>> [p.output_adapter.path for p in plan.pipes], [t.path for t, _ in plan.merges]
        (['out.part-00000.jsonl', 'out.part-00001.jsonl'], ['out.jsonl'])
    """

    pipes: list[Pipe]
    merges: list[tuple[OutputAdapter, list[OutputAdapter]]] = field(default_factory=list)
    datasets: list[tuple[OutputAdapter, list[OutputAdapter]]] = field(default_factory=list)


def plan_shards(pipe: Pipe, workers: int, should_merge: bool, executor: Any = None) -> ShardPlan:
    """Split ``pipe`` into shard pipes (ShardingError when it cannot be split)."""
    check_workers(workers)
    outputs = [a for a in (pipe.output_adapter, pipe.error_output_adapter) if a is not None]
    if should_merge:
        for adapter in outputs:
            adapter.check_mergeable()
    datasets = [writes_dataset(a) for a in outputs]
    for adapter, dataset in zip(outputs, datasets, strict=True):
        if dataset:
            check_dataset_target(adapter, should_merge)
    as_dataset = [dataset and not should_merge for dataset in datasets]

    def shard_of(adapter: OutputAdapter, index: int, in_dataset: bool) -> OutputAdapter:
        return dataset_part(adapter, index) if in_dataset else adapter.shard(index)

    inputs = pipe.input_adapter.split(workers)
    if not inputs:
        raise ShardingError(f"{pipe.input_adapter!r}.split({workers}) returned no shards")
    parts: list[list[OutputAdapter]] = [[] for _ in outputs]
    pipes = []
    for index, shard_input in enumerate(inputs):
        shard = pipe.fresh_copy(pipe_index=index)
        shard.input_adapter = shard_input
        shard.output_adapter = shard_of(pipe.output_adapter, index, as_dataset[0])
        parts[0].append(shard.output_adapter)
        if pipe.error_output_adapter is not None:
            shard.error_output_adapter = shard_of(pipe.error_output_adapter, index, as_dataset[1])
            parts[1].append(shard.error_output_adapter)
        if executor is not None:
            shard.executor = executor
        pipes.append(shard)
    merges = list(zip(outputs, parts, strict=True)) if should_merge else []
    directories = [(a, p) for a, p, d in zip(outputs, parts, as_dataset, strict=True) if d]
    return ShardPlan(pipes, merges, directories)
