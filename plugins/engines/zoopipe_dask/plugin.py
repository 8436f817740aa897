"""Registers the Dask engine by import string: loading this plugin never imports Dask."""

from zoopipe_core.plugins import RegisterEngine, hookimpl


@hookimpl
def zoopipe_register_engines(register: RegisterEngine) -> None:
    register("dask", "zoopipe_dask.engine:DaskEngine", extra="dask")
