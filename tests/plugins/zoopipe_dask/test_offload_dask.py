"""Offloaded calls on Dask: the offload contract on the session's LocalCluster."""

from __future__ import annotations

import pytest
from conftest import restore_dask_workers
from zoopipe_dask import DaskEngine

from zoopipe_core.testing.offload_contract import OffloadContract


class TestOffloadOnDask(OffloadContract):
    address = ""

    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def _cluster(cls, dask_cluster):
        cls.address = dask_cluster.scheduler_address

    @pytest.fixture(autouse=True)
    def _both_workers(self, dask_cluster):
        restore_dask_workers(dask_cluster)

    def make_engine(self) -> DaskEngine:
        return DaskEngine(self.address)
