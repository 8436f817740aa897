"""Registers the S3 syncer by import string: loading this plugin never imports s3fs or boto."""

from zoopipe_core.plugins import RegisterSyncer, hookimpl


@hookimpl
def zoopipe_register_syncers(register: RegisterSyncer) -> None:
    register("s3", "zoopipe_s3.syncer:S3Syncer", schemes=("s3", "s3a"), extra="s3")
