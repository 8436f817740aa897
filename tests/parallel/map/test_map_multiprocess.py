"""ParallelMap on local processes: the map contract, plus what only this engine shows."""

from __future__ import annotations

from zoopipe_core import ParallelMap
from zoopipe_core.engines import MultiProcessEngine
from zoopipe_core.testing.map_contract import MapContract
from zoopipe_core.testing.map_tasks import CountedLoads, square


class TestMapOnProcesses(MapContract):
    def make_engine(self) -> MultiProcessEngine:
        return MultiProcessEngine(max_workers=2)


def test_a_callable_object_is_shared_once_per_engine_run_not_per_call(tmp_path):
    with MultiProcessEngine(max_workers=2) as engine:
        pm = ParallelMap(CountedLoads(str(tmp_path)), engine=engine)
        for _ in range(5):
            assert pm.map(range(3)) == [1, 2, 3]
        assert len(engine._shared) == 1
        pm.map(range(3), timeout=5.0)  # other options: another job
        assert len(engine._shared) == 2
    with engine:  # a new run: shared again
        assert pm.map(range(3)) == [1, 2, 3]
        assert len(engine._shared) == 1


def test_a_module_level_function_goes_by_name_with_each_batch_unshared():
    # Pickled by reference it is a module and a name: sharing it would cost a put per map.
    with MultiProcessEngine(max_workers=2) as engine:
        assert ParallelMap(square, engine=engine).map(range(3)) == [0, 1, 4]
        assert ParallelMap(square, engine=engine, key=str).map(range(3)) == [0, 1, 4]
        assert engine._shared == []
        assert ParallelMap(lambda x: -x, engine=engine).map(range(3)) == [0, -1, -2]
        assert engine._shared == []  # a lambda cannot be shared here: forked workers inherit it
