"""The parallel-map contract: one suite that :class:`~zoopipe_core.ParallelMap` passes, unchanged,
on every engine.

Subclass :class:`MapContract` in a test module (name it ``Test...``) and override
:meth:`~MapContract.make_engine`. The mapped functions live in
:mod:`zoopipe_core.testing.map_tasks`, so engines that pickle them can ship them by reference.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from zoopipe_core.engines import Engine, RemoteError, WorkerLost
from zoopipe_core.parallel.map import ParallelMap
from zoopipe_core.testing.map_tasks import (
    CountedLoads,
    NeedsTwoArguments,
    fail_on,
    fail_unpicklable,
    flaky,
    hang_on,
    kill_worker_on,
    power,
    record_call,
    run_until_stopped,
    square,
    wait_for_a_later_item,
)
from zoopipe_core.testing.sync import raises, wait_for


class MapContract:
    """The conformance suite of ParallelMap on one engine; subclass it once per engine.

    Override :meth:`make_engine` to return a new, stopped engine with 2 workers. ``self.engine``
    is made before each test and shut down after it; ``self.tmp`` is a directory the driver and
    the workers share.

    Example:
        >>> from zoopipe_core.engines import MultiProcessEngine
        >>> class TestMapOnProcesses(MapContract):
        ...     def make_engine(self):
        ...         return MultiProcessEngine(max_workers=2)
        >>> case = TestMapOnProcesses()
        >>> case.setup_method()
        >>> case.test_map_keeps_order_and_spreads_arguments()
        >>> case.teardown_method()
    """

    #: A worker that dies is replaced at once (False where restarting one takes long).
    replaces_lost_workers_quickly = True

    def make_engine(self) -> Engine:
        """A new, stopped engine under test; subclasses override this."""
        raise NotImplementedError(f"{type(self).__name__} must override make_engine()")

    def setup_method(self, method: Any = None) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="zoopipe-map-contract-"))
        self.engine = self.make_engine()

    def teardown_method(self, method: Any = None) -> None:
        try:
            self.engine.shutdown(timeout=5.0)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def pmap(self, fn: Any, **kwargs: Any) -> ParallelMap:
        return ParallelMap(fn, engine=self.engine, **kwargs)

    # ------------------------------------------------------------------ results

    def test_map_keeps_order_and_spreads_arguments(self) -> None:
        assert self.pmap(square).map(range(50)) == [x * x for x in range(50)]
        pm = self.pmap(power)
        assert pm.map([(2, 3), {"base": 3}, (5,)]) == [8, 9, 25]
        assert list(pm.imap([(2, 10)], ret_args=True)) == [((2, 10), 1024)]
        assert pm.map([]) == []

    def test_as_ready_yields_in_completion_order(self) -> None:
        # Item 0 ends only after a later item has ended (however slowly the engine starts its
        # second worker), so a later one comes first; in input order item 0 would.
        fn = functools.partial(wait_for_a_later_item, str(self.tmp))
        out = self.pmap(fn, batch_size=1).map(range(8), keep_order=False, ret_args=True)
        assert sorted(out) == [(x, x) for x in range(8)]
        assert out[0] != (0, 0), out

    def test_input_is_consumed_lazily_and_an_infinite_input_works(self) -> None:
        pulled = itertools.count()

        def numbers() -> Any:
            for n in itertools.count():
                next(pulled)
                yield n

        results = []
        for value in self.pmap(square, batch_size=4, max_pending=2).imap(numbers()):
            results.append(value)
            if len(results) == 10:
                break
        assert results == [x * x for x in range(10)]
        consumed = next(pulled)
        # At most: the yielded ones, plus the batches in flight and waiting to be yielded.
        assert consumed <= 10 + 4 * (2 * 2 + 2 + 2), consumed

    def test_leaving_the_loop_early_stops_the_work_in_flight(self) -> None:
        fn = functools.partial(run_until_stopped, str(self.tmp))
        iterator = self.pmap(fn, batch_size=1, max_pending=3).imap(range(3))
        assert next(iterator) == 0  # item 0 returns at once; 1 and 2 run until stopped
        wait_for(lambda: (self.tmp / "started-1").exists(), "item 1 to start")
        iterator.close()  # what `break` does
        started = {p.name.split("-")[1] for p in self.tmp.glob("started-*")}
        wait_for(
            lambda: {p.name.split("-")[1] for p in self.tmp.glob("stopped-*")} >= started,
            f"items {sorted(started)} to be stopped",
        )

    def test_closing_the_async_iterator_stops_the_work_in_flight(self) -> None:
        fn = functools.partial(run_until_stopped, str(self.tmp))

        async def main() -> Any:
            iterator = self.pmap(fn, batch_size=1, max_pending=3).imap_async(range(3))
            first = await iterator.__anext__()  # item 0 returns at once; 1 and 2 run on
            await asyncio.to_thread(wait_for, lambda: (self.tmp / "started-1").exists(), "item 1 to start")
            await iterator.aclose()  # what leaving `async for` early does
            return first

        assert asyncio.run(main()) == 0
        started = {p.name.split("-")[1] for p in self.tmp.glob("started-*")}
        wait_for(
            lambda: {p.name.split("-")[1] for p in self.tmp.glob("stopped-*")} >= started,
            f"items {sorted(started)} to be stopped",
        )

    # ------------------------------------------------------------------ failures

    def test_safe_exceptions_return_the_original_type_with_the_remote_traceback(self) -> None:
        out = self.pmap(fail_on).map(range(6), safe_exceptions=True)
        assert [v for i, v in enumerate(out) if i != 3] == [0, 1, 4, 16, 25]
        error = out[3]
        assert type(error) is ValueError and str(error) == "item 3 is bad"
        remote = RemoteError.of(error)
        assert remote is not None and "fail_on" in remote.remote_traceback

    def test_an_exception_that_does_not_pickle_keeps_its_type_and_message(self) -> None:
        out = self.pmap(fail_unpicklable).map(range(3), safe_exceptions=True)
        assert out[0] == 0 and out[2] == 2
        assert isinstance(out[1], NeedsTwoArguments)
        assert "code 7: no pickle" in str(out[1])

    def test_without_safe_exceptions_the_item_raises_its_own_type(self) -> None:
        seen = []
        try:
            for value in self.pmap(fail_on, batch_size=2).imap(range(6)):
                seen.append(value)
        except ValueError as exc:
            assert str(exc) == "item 3 is bad"
            assert RemoteError.of(exc) is not None
        else:
            raise AssertionError("the failing item did not raise")
        assert seen == [0, 1, 4]

    def test_retries_retry_matching_exceptions_with_backoff(self) -> None:
        directory = str(self.tmp)
        fn = functools.partial(flaky, directory, failures=2)
        pm = self.pmap(fn, retries=2, retry_on=ConnectionError, backoff=0.01)
        assert pm.map([(1,), (2,)]) == [1, 2]
        other = self.tmp / "other"
        other.mkdir()
        fn = functools.partial(flaky, str(other), failures=1)
        out = self.pmap(fn, retries=3, retry_on=KeyError).map([(1,)], safe_exceptions=True)
        assert isinstance(out[0], ConnectionError)  # not a KeyError: not retried
        assert len(list(other.glob("flaky-1-*"))) == 1

    def test_a_timeout_fails_the_stuck_item_and_frees_its_worker(self) -> None:
        fn = functools.partial(hang_on, hang=(1, 4), seconds=30.0)
        started = time.monotonic()
        out = self.pmap(fn, batch_size=3).map(range(8), timeout=1.0, safe_exceptions=True)
        elapsed = time.monotonic() - started
        assert [v for i, v in enumerate(out) if i not in (1, 4)] == [0, 2, 3, 5, 6, 7]
        assert isinstance(out[1], TimeoutError) and isinstance(out[4], TimeoutError)
        assert "timeout of 1 s" in str(out[1])
        assert elapsed < 10, f"two stuck items held the map for {elapsed:.1f} s"

    def test_an_item_that_kills_its_worker_fails_alone(self) -> None:
        fn = functools.partial(kill_worker_on, bad=5)
        out = self.pmap(fn, batch_size=8).map(range(8), safe_exceptions=True)
        assert [v for i, v in enumerate(out) if i != 5] == [0, 1, 2, 3, 4, 6, 7]
        assert isinstance(out[5], WorkerLost)

    # ------------------------------------------------------------------ shipping and async

    def test_the_function_is_shipped_once_per_worker_not_per_batch(self) -> None:
        directory = str(self.tmp)
        assert self.pmap(CountedLoads(directory), batch_size=1).map(range(20)) == list(range(1, 21))
        loads = Counter(path.name.split("-")[1] for path in self.tmp.glob("load-*"))
        assert loads, "the function was never loaded on a worker"
        assert max(loads.values()) == 1, loads

    def test_async_variants(self) -> None:
        async def main() -> tuple[list[Any], list[Any]]:
            pm = self.pmap(square)
            streamed = [y async for y in pm.imap_async(range(20))]
            gathered = await pm.map_async(_agen(5), ret_args=True)
            return streamed, gathered

        streamed, gathered = asyncio.run(main())
        assert streamed == [x * x for x in range(20)]
        assert gathered == [(x, x * x) for x in range(5)]

    def test_checkpoint_resumes_with_the_recorded_results(self) -> None:
        calls = self.tmp / "calls"
        calls.mkdir()
        journal = self.tmp / "run.journal"
        fn = functools.partial(record_call, str(calls))
        first = []
        for value in self.pmap(fn, batch_size=5, max_pending=1, checkpoint_path=journal).imap(range(40)):
            first.append(value)
            if len(first) == 20:
                break
        # The batch in flight at the break is being stopped: let its last calls land first.
        before = wait_for(lambda: _settled(calls), "the stopped batch's calls to end")
        again = self.pmap(fn, batch_size=5, checkpoint_path=journal).map(range(40))
        assert again == [x * x for x in range(40)]
        computed_again = len(list(calls.iterdir())) - before
        assert computed_again <= 40 - 20, computed_again

    def test_bad_arguments_fail_at_once(self) -> None:
        raises(ValueError, lambda: ParallelMap(square, engine=self.engine, max_pending=0))
        raises(ValueError, lambda: ParallelMap(square, engine=self.engine, batch_size=0))
        raises(ValueError, lambda: self.pmap(square).imap(range(3), timeout=-1))


async def _agen(count: int) -> Any:
    for n in range(count):
        yield n


def _settled(directory: Path) -> int:
    """The number of files in ``directory`` once none was added for half a second (else 0)."""
    before = len(list(directory.iterdir()))
    time.sleep(0.5)
    after = len(list(directory.iterdir()))
    return after if after == before else 0
