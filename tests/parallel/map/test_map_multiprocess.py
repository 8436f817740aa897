"""ParallelMap on local processes: the map contract, plus what only this engine shows."""

from __future__ import annotations

from zoopipe_core.engines import MultiProcessEngine
from zoopipe_core.testing.map_contract import MapContract


class TestMapOnProcesses(MapContract):
    def make_engine(self) -> MultiProcessEngine:
        return MultiProcessEngine(max_workers=2)
