"""ParallelMap on local processes: the map contract, plus what only this engine shows."""

from __future__ import annotations

from zoopipe_core import ParallelMap
from zoopipe_core.engines import MultiProcessEngine
from zoopipe_core.testing.map_contract import MapContract
from zoopipe_core.testing.map_tasks import square


class TestMapOnProcesses(MapContract):
    def make_engine(self) -> MultiProcessEngine:
        return MultiProcessEngine(max_workers=2)


def test_the_job_is_shared_once_per_engine_run_not_per_call():
    with MultiProcessEngine(max_workers=2) as engine:
        pm = ParallelMap(square, engine=engine)
        for _ in range(5):
            assert pm.map(range(3)) == [0, 1, 4]
        assert len(engine._shared) == 1
        pm.map(range(3), timeout=5.0)  # other options: another job
        assert len(engine._shared) == 2
    with engine:  # a new run: shared again
        assert pm.map(range(3)) == [0, 1, 4]
