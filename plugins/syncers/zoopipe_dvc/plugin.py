"""Registers the DVC syncer by import string: loading this plugin never imports dvc."""

from zoopipe_core.plugins import RegisterSyncer, hookimpl


@hookimpl
def zoopipe_register_syncers(register: RegisterSyncer) -> None:
    register("dvc", "zoopipe_dvc.syncer:DvcSyncer", schemes=("dvc",), extra="dvc")
