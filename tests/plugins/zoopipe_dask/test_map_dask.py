"""ParallelMap on Dask: the map contract on the session's LocalCluster."""

from __future__ import annotations

from conftest import OnSessionDask

from zoopipe_core.testing.map_contract import MapContract


class TestMapOnDask(OnSessionDask, MapContract):
    pass
