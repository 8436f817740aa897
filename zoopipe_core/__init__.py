"""zoopipe: data pipelines with a Rust core, from one laptop to a Ray or Dask cluster.

Names are resolved on first use, so ``import zoopipe_core`` (and importing a plugin) stays cheap.

Example:
    >>> from zoopipe_core import Pipe, PyGeneratorInputAdapter, MemoryOutputAdapter
    >>> out = MemoryOutputAdapter()
    >>> Pipe(PyGeneratorInputAdapter([{"a": 1}, {"a": 2}]), out).run().success_count
    2
    >>> out.records
    [{'a': 1}, {'a': 2}]
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "Pipe": "zoopipe_core.pipe.pipe",
    "PipeReport": "zoopipe_core.pipe.report",
    "PipeManager": "zoopipe_core.parallel.manager",
    "FlowReport": "zoopipe_core.parallel.report",
    "ParallelMap": "zoopipe_core.parallel.map.api",
    "Offload": "zoopipe_core.parallel.offload.api",
    "remote": "zoopipe_core.parallel.offload.api",
    "ShardingError": "zoopipe_core.errors",
    "PipeStatus": "zoopipe_core.pipe.report",
    "Transform": "zoopipe_core.pipe.transforms",
    "SingleThreadExecutor": "zoopipe_core.pipe.executors",
    "MultiThreadExecutor": "zoopipe_core.pipe.executors",
    "InputAdapter": "zoopipe_core.adapters.base",
    "OutputAdapter": "zoopipe_core.adapters.base",
    "BatchWriter": "zoopipe_core.adapters.base",
    "CSVInputAdapter": "zoopipe_core.adapters.csv",
    "CSVOutputAdapter": "zoopipe_core.adapters.csv",
    "JSONInputAdapter": "zoopipe_core.adapters.jsonl",
    "JSONOutputAdapter": "zoopipe_core.adapters.jsonl",
    "ParquetInputAdapter": "zoopipe_core.adapters.parquet",
    "ParquetOutputAdapter": "zoopipe_core.adapters.parquet",
    "ArrowInputAdapter": "zoopipe_core.adapters.arrow",
    "ArrowOutputAdapter": "zoopipe_core.adapters.arrow",
    "PyGeneratorInputAdapter": "zoopipe_core.adapters.memory",
    "MemoryOutputAdapter": "zoopipe_core.adapters.memory",
    "PyGeneratorOutputAdapter": "zoopipe_core.adapters.pygen",
    "CountOutputAdapter": "zoopipe_core.adapters.count",
    "Base64Bytes": "zoopipe_core.fields",
    "PipelineError": "zoopipe_core.errors",
    "PluginError": "zoopipe_core.errors",
    "hookimpl": "zoopipe_core.plugins.hookspecs",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'zoopipe_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
