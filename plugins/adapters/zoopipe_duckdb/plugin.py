"""Registers the DuckDB output adapter by import string: loading this plugin never imports duckdb.

It also hands the pipe's schema model to a DuckDB output before the run, so the table's column
types follow the model.
"""

from __future__ import annotations

import sys
from typing import Any

from zoopipe_core.plugins import RegisterAdapter, hookimpl


@hookimpl
def zoopipe_register_adapters(register: RegisterAdapter) -> None:
    register(
        "duckdb",
        output="zoopipe_duckdb.adapter:DuckDBOutputAdapter",
        suffixes=(".duckdb",),
        extra="duckdb",
    )


@hookimpl
def zoopipe_before_run(pipe: Any) -> None:
    adapter_module = sys.modules.get("zoopipe_duckdb.adapter")
    if adapter_module is None:  # not imported: no pipe can be writing to DuckDB
        return
    output = getattr(pipe, "output_adapter", None)
    if isinstance(output, adapter_module.DuckDBOutputAdapter):
        output.use_pipe_model(getattr(pipe, "schema_model", None))
