"""Registers the DuckDB output adapter by import string: loading this plugin never imports duckdb."""

from zoopipe_core.hookspecs import RegisterAdapter, hookimpl


@hookimpl
def zoopipe_register_adapters(register: RegisterAdapter) -> None:
    register("duckdb", output="zoopipe_duckdb.adapter:DuckDBOutputAdapter", suffixes=(".duckdb",), extra="duckdb")
