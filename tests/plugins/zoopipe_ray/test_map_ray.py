"""ParallelMap on Ray: the map contract on the session's local Ray."""

from __future__ import annotations

import pytest
from zoopipe_ray import RayEngine

from zoopipe_core.testing.map_contract import MapContract


@pytest.mark.usefixtures("ray_cluster")
class TestMapOnRay(MapContract):
    def make_engine(self) -> RayEngine:
        return RayEngine(warm_workers=0)
