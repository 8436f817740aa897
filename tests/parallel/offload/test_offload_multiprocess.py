"""Offloaded calls on local processes: the offload contract."""

from __future__ import annotations

from zoopipe_core.engines import MultiProcessEngine
from zoopipe_core.testing.offload_contract import OffloadContract


class TestOffloadOnProcesses(OffloadContract):
    def make_engine(self) -> MultiProcessEngine:
        return MultiProcessEngine(max_workers=2)
