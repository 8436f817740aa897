"""Offloaded calls on Dask: the offload contract on the session's LocalCluster."""

from __future__ import annotations

from conftest import OnSessionDask

from zoopipe_core.testing.offload_contract import OffloadContract


class TestOffloadOnDask(OnSessionDask, OffloadContract):
    pass
