"""The built-in components, registered through entry point ``core`` like any third-party plugin.

Everything is registered by import string, so loading this plugin imports none of the modules
it names.
"""

from __future__ import annotations

import pathlib

from zoopipe_core.plugins.hookspecs import (
    RegisterAdapter,
    RegisterEngine,
    RegisterInstaller,
    RegisterSyncer,
    hookimpl,
)


@hookimpl
def zoopipe_register_engines(register: RegisterEngine) -> None:
    register("multiprocess", "zoopipe_core.engines.multiprocess:MultiProcessEngine")


@hookimpl
def zoopipe_register_adapters(register: RegisterAdapter) -> None:
    register(
        "csv",
        input="zoopipe_core.adapters.csv:CSVInputAdapter",
        output="zoopipe_core.adapters.csv:CSVOutputAdapter",
        suffixes=(".csv", ".csv.gz", ".csv.zst", ".tsv", ".tsv.gz"),
    )
    register(
        "jsonl",
        input="zoopipe_core.adapters.jsonl:JSONInputAdapter",
        output="zoopipe_core.adapters.jsonl:JSONOutputAdapter",
        suffixes=(".jsonl", ".ndjson", ".jsonl.gz", ".jsonl.zst", ".ndjson.gz"),
    )
    register(
        "json",
        input="zoopipe_core.adapters.jsonl:JSONInputAdapter",
        output="zoopipe_core.adapters.jsonl:JSONOutputAdapter",
        suffixes=(".json", ".json.gz", ".json.zst"),
    )
    register(
        "parquet",
        input="zoopipe_core.adapters.parquet:ParquetInputAdapter",
        output="zoopipe_core.adapters.parquet:ParquetOutputAdapter",
        suffixes=(".parquet", ".pq"),
    )
    register(
        "arrow",
        input="zoopipe_core.adapters.arrow:ArrowInputAdapter",
        output="zoopipe_core.adapters.arrow:ArrowOutputAdapter",
        suffixes=(".arrow", ".feather", ".ipc", ".arrows"),
    )
    register(
        "generator",
        input="zoopipe_core.adapters.memory:PyGeneratorInputAdapter",
        output="zoopipe_core.adapters.pygen:PyGeneratorOutputAdapter",
    )
    register("memory", output="zoopipe_core.adapters.memory:MemoryOutputAdapter")
    register("count", output="zoopipe_core.adapters.count:CountOutputAdapter")


@hookimpl
def zoopipe_register_installers(register: RegisterInstaller) -> None:
    register("pip", "zoopipe_core.installers:PipInstaller")
    register("uv", "zoopipe_core.installers:UvInstaller")
    register("poetry", "zoopipe_core.installers:PoetryInstaller")
    register("manual", "zoopipe_core.installers:ManualInstaller")


@hookimpl
def zoopipe_register_syncers(register: RegisterSyncer) -> None:
    register("local", "zoopipe_core.syncers.local:LocalSyncer", schemes=("", "file"))


# trylast: a third-party plugin that recognises the project decides before the built-in rules.
@hookimpl(trylast=True)
def zoopipe_select_installer(project_dir: pathlib.Path) -> str | None:
    from zoopipe_core.installers import detect_installer

    return detect_installer(project_dir)
