"""ParallelMap on Dask: the map contract on the session's LocalCluster."""

from __future__ import annotations

import pytest
from conftest import restore_dask_workers
from zoopipe_dask import DaskEngine

from zoopipe_core.testing.map_contract import MapContract


class TestMapOnDask(MapContract):
    address = ""

    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def _cluster(cls, dask_cluster):
        # Class scope: set before the contract's setup_method calls make_engine().
        cls.address = dask_cluster.scheduler_address

    @pytest.fixture(autouse=True)
    def _both_workers(self, dask_cluster):
        restore_dask_workers(dask_cluster)

    def make_engine(self) -> DaskEngine:
        return DaskEngine(self.address)
