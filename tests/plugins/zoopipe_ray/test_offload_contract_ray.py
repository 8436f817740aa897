"""Offloaded calls on Ray: the offload contract on the session's local Ray."""

from __future__ import annotations

import pytest
from zoopipe_ray import RayEngine

from zoopipe_core.testing.offload_contract import OffloadContract


@pytest.mark.usefixtures("ray_cluster")
class TestOffloadOnRay(OffloadContract):
    def make_engine(self) -> RayEngine:
        return RayEngine(warm_workers=0)
