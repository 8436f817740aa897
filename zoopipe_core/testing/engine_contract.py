"""The engine contract: one test suite every engine passes, unchanged.

Subclass :class:`EngineContract` in a test module, name the subclass ``Test...`` so pytest
collects it, and override :meth:`~EngineContract.make_engine`. The tasks are module-level
functions of :mod:`zoopipe_core.testing.tasks`, so engines that pickle tasks (spawn, Ray, Dask)
can run them, and they synchronise through files in a temporary directory the driver and the
workers share.

Capability flags, for what only some engines can promise, are class attributes a subclass sets:

- ``shares_memory_locally``: ``SharedRef.key`` names a ``multiprocessing.shared_memory`` block
  on this machine that holds the shared object, and is unlinked at shutdown.
- ``reports_lost_worker_pid``: ``WorkerLost.pid`` is the pid of the process that died.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from zoopipe_core.engines import (
    Engine,
    RemoteError,
    WorkerEnvironment,
    WorkerLost,
    current_worker,
)
from zoopipe_core.testing.sync import WAIT, raises, touch, wait_for
from zoopipe_core.testing.tasks import (
    add,
    describe_shared,
    ignore_stop_requests,
    import_attribute,
    kill_own_process,
    raise_unpicklable,
    raise_value_error,
    read_env,
    report_then_wait,
    wait_for_flag,
    wait_for_others,
    where_am_i,
)


class EngineContract:
    """The conformance suite of the engine interface; subclass it once per engine.

    Override :meth:`make_engine` to return a new, stopped engine (with at least 2 workers).
    ``self.engine`` is made before each test and shut down after it; ``self.tmp`` is a
    temporary directory that workers can read and write.

    Example:
        >>> from zoopipe_core.engines import MultiProcessEngine
        >>> class TestMultiProcessEngine(EngineContract):
        ...     def make_engine(self):
        ...         return MultiProcessEngine(max_workers=2)
        >>> case = TestMultiProcessEngine()
        >>> case.setup_method()
        >>> case.test_submit_returns_results()
        >>> case.teardown_method()
    """

    shares_memory_locally = False
    reports_lost_worker_pid = False

    def make_engine(self) -> Engine:
        """A new, stopped engine under test; subclasses override this."""
        raise NotImplementedError(
            f"{type(self).__name__} must override make_engine() to return the engine under test"
        )

    def setup_method(self, method: Any = None) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="zoopipe-contract-"))
        self.engine = self.make_engine()

    def teardown_method(self, method: Any = None) -> None:
        try:
            self.engine.shutdown(timeout=5.0)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def path(self, name: str) -> str:
        return str(self.tmp / name)

    # ------------------------------------------------------------------ lifecycle

    def test_submit_returns_results(self) -> None:
        future = self.engine.submit(add, 2, 3, scale=10)
        assert future.result(timeout=WAIT) == 50

    def test_submit_starts_the_engine_and_start_twice_is_an_error(self) -> None:
        assert not self.engine.is_running
        assert self.engine.submit(add, 1, 1).result(timeout=WAIT) == 2
        assert self.engine.is_running
        raises(RuntimeError, self.engine.start)
        self.engine.shutdown()
        assert not self.engine.is_running
        self.engine.shutdown()  # a no-op once stopped
        self.engine.start()  # an engine can run again after a shutdown
        assert self.engine.submit(add, 2, 2).result(timeout=WAIT) == 4

    def test_start_with_pipes_says_to_use_a_pipe_manager(self) -> None:
        # ZooPipe's spelling, engine.start(pipes): refused before anything starts.
        error = raises(TypeError, lambda: self.engine.start([object()]))
        assert "PipeManager(pipes, engine=" in str(error) and type(self.engine).__name__ in str(error)
        assert not self.engine.is_running

    def test_many_submissions_complete(self) -> None:
        futures = [self.engine.submit(add, n, n) for n in range(40)]
        assert [f.result(timeout=WAIT) for f in futures] == [2 * n for n in range(40)]

    def test_context_manager_waits_for_work_then_shuts_down(self) -> None:
        with self.make_engine() as engine:
            assert engine.is_running
            future = engine.submit(add, 20, 22)
        assert future.done() and future.result() == 42
        assert not engine.is_running

    def test_context_manager_stops_work_when_the_blockraises(self) -> None:
        started, flag = self.path("started"), self.path("never-set")
        try:
            with self.make_engine() as engine:
                future = engine.submit(wait_for_flag, started, flag)
                wait_for(lambda: os.path.exists(started), "the task to start")
                raise KeyError("the block failed")
        except KeyError:
            pass
        assert future.cancelled()
        assert not engine.is_running

    # ------------------------------------------------------------------ failures

    def test_exceptions_come_back_with_type_message_and_remote_traceback(self) -> None:
        future = self.engine.submit(raise_value_error, "bad row 7")
        error = raises(ValueError, lambda: future.result(timeout=WAIT))
        assert type(error) is ValueError and str(error) == "bad row 7"
        remote = RemoteError.of(error)
        assert remote is not None, "the original exception must carry a RemoteError cause"
        assert (remote.exc_type, remote.message) == ("ValueError", "bad row 7")
        assert "raise_value_error" in remote.remote_traceback
        assert "ValueError: bad row 7" in remote.remote_traceback

    def test_an_exception_that_cannot_travel_comes_back_as_remote_error(self) -> None:
        future = self.engine.submit(raise_unpicklable, "holds a lock")
        error = raises(RemoteError, lambda: future.result(timeout=WAIT))
        assert error.exc_type.endswith("UnpicklableTaskError")
        assert error.message == "holds a lock"
        assert "raise_unpicklable" in error.remote_traceback

    def test_a_killed_worker_fails_only_its_own_future(self) -> None:
        started, release, pid_file = self.path("started"), self.path("release"), self.path("pid")
        survivor = self.engine.submit(wait_for_flag, started, release)
        wait_for(lambda: os.path.exists(started), "the surviving task to start")
        victim = self.engine.submit(kill_own_process, pid_file)
        error = raises(WorkerLost, lambda: victim.result(timeout=WAIT))
        assert isinstance(error, RemoteError)
        if self.reports_lost_worker_pid:
            pid = int(Path(pid_file).read_text())
            assert error.pid == pid and str(pid) in str(error)
            assert "SIGKILL" in str(error)
        assert not survivor.done()
        touch(release)
        assert survivor.result(timeout=WAIT) == "released"
        assert self.engine.submit(add, 1, 2).result(timeout=WAIT) == 3

    # ------------------------------------------------------------------ stopping work

    def test_cancel_stops_a_running_task(self) -> None:
        started = self.path("started")
        future = self.engine.submit(wait_for_flag, started, self.path("never-set"))
        wait_for(lambda: os.path.exists(started), "the task to start")
        assert self.engine.cancel(future) is True
        assert future.cancelled()
        finished = self.engine.submit(add, 1, 1)
        assert finished.result(timeout=WAIT) == 2
        assert self.engine.cancel(finished) is False

    def test_shutdown_stops_a_task_that_never_ends_within_the_timeout(self) -> None:
        started = self.path("started")
        future = self.engine.submit(ignore_stop_requests, started)
        wait_for(lambda: os.path.exists(started), "the task to start")
        began = time.monotonic()
        self.engine.shutdown(timeout=1.0)
        elapsed = time.monotonic() - began
        assert elapsed < 1.0 + 2.0, f"shutdown(timeout=1.0) took {elapsed:.1f} s"
        assert future.cancelled()
        assert not self.engine.is_running

    # ------------------------------------------------------------------ environment

    def test_prepare_sets_env_vars_and_code_paths_for_tasks(self) -> None:
        module = f"zoopipe_contract_{uuid.uuid4().hex}"
        code = self.tmp / "code"
        code.mkdir()
        (code / f"{module}.py").write_text("VALUE = 42\n")
        variable = f"ZOOPIPE_CONTRACT_{uuid.uuid4().hex.upper()}"
        self.engine.prepare(WorkerEnvironment(code_paths=[str(code)], env_vars={variable: "on"}))
        assert self.engine.submit(read_env, variable).result(timeout=WAIT) == "on"
        assert self.engine.submit(import_attribute, module, "VALUE").result(timeout=WAIT) == 42
        assert variable not in os.environ, "env_vars must reach workers, not the driver"

    def test_prepare_rejects_missing_code_paths(self) -> None:
        missing = self.path("no-such-directory")
        error = raises(
            FileNotFoundError,
            lambda: self.engine.prepare(WorkerEnvironment(code_paths=[missing])),
        )
        assert missing in str(error)

    # ------------------------------------------------------------------ sharing

    def test_share_sends_a_large_object_once(self) -> None:
        data = bytes(range(256)) * (50 * 2**20 // 256)  # 50 MiB
        ref = self.engine.share(data)
        assert len(pickle.dumps(ref)) < 10_000, "tasks must receive a handle, not the object"
        futures = [self.engine.submit(describe_shared, ref, self.shares_memory_locally) for _ in range(2)]
        expected = hashlib.sha256(data).hexdigest()
        for description in (f.result(timeout=WAIT) for f in futures):
            assert description["key"] == ref.key
            assert (description["size"], description["sha256"]) == (len(data), expected)
            assert description["cached"], "get() must return the same object within a process"
            if self.shares_memory_locally:
                assert description["block_size"] >= len(data)
        if self.shares_memory_locally:
            from multiprocessing import shared_memory

            self.engine.shutdown()
            raises(FileNotFoundError, lambda: shared_memory.SharedMemory(name=ref.key))

    # ------------------------------------------------------------------ progress

    def test_progress_is_visible_before_the_task_ends(self) -> None:
        key = f"contract-{uuid.uuid4().hex}"
        seen: list[tuple[str, dict[str, Any]]] = []
        self.engine.on_progress(lambda k, payload: seen.append((k, payload)))
        flag = self.path("flag")
        future = self.engine.submit(report_then_wait, key, flag)
        payload = wait_for(lambda: self.engine.progress().get(key), "progress from the task")
        assert payload == {"done": 1, "total": 2}
        assert not future.done(), "progress must arrive while the task runs"
        wait_for(lambda: (key, {"done": 1, "total": 2}) in seen, "the progress callback")
        touch(flag)
        assert future.result(timeout=WAIT) == "finished"
        wait_for(
            lambda: self.engine.progress().get(key) == {"done": 2, "total": 2},
            "the final progress payload",
        )

    # ------------------------------------------------------------------ dedicated workers

    def test_submit_dedicated_returns_results_and_errors_like_submit(self) -> None:
        assert self.engine.submit_dedicated(add, 2, 3, scale=10).result(timeout=WAIT) == 50
        assert self.engine.is_running, "submit_dedicated() starts a stopped engine"
        future = self.engine.submit_dedicated(raise_value_error, "bad row 7")
        error = raises(ValueError, lambda: future.result(timeout=WAIT))
        assert type(error) is ValueError and str(error) == "bad row 7"
        remote = RemoteError.of(error)
        assert remote is not None and "raise_value_error" in remote.remote_traceback
        raises(TypeError, lambda: self.engine.submit_dedicated("not callable"))  # type: ignore[arg-type]

    def test_submit_dedicated_killed_worker_is_worker_lost(self) -> None:
        pid_file = self.path("pid")
        victim = self.engine.submit_dedicated(kill_own_process, pid_file)
        error = raises(WorkerLost, lambda: victim.result(timeout=WAIT))
        if self.reports_lost_worker_pid:
            pid = int(Path(pid_file).read_text())
            assert error.pid == pid and "SIGKILL" in str(error)
        assert self.engine.submit_dedicated(add, 1, 2).result(timeout=WAIT) == 3

    def test_submit_dedicated_cancel_stops_it(self) -> None:
        started = self.path("started")
        future = self.engine.submit_dedicated(wait_for_flag, started, self.path("never-set"))
        wait_for(lambda: os.path.exists(started), "the dedicated task to start")
        assert self.engine.cancel(future) is True
        assert future.cancelled()

    def test_submit_dedicated_progress_arrives_while_it_runs(self) -> None:
        key = f"contract-{uuid.uuid4().hex}"
        flag = self.path("flag")
        future = self.engine.submit_dedicated(report_then_wait, key, flag)
        payload = wait_for(lambda: self.engine.progress().get(key), "progress from the task")
        assert payload == {"done": 1, "total": 2}
        assert not future.done(), "progress must arrive while the task runs"
        touch(flag)
        assert future.result(timeout=WAIT) == "finished"
        wait_for(
            lambda: self.engine.progress().get(key) == {"done": 2, "total": 2},
            "the final progress payload",
        )

    # ------------------------------------------------------------------ capacity and placement

    def test_capacity_is_how_many_tasks_run_at_once(self) -> None:
        capacity = self.engine.capacity()
        assert self.engine.is_running, "capacity() starts a stopped engine"
        assert isinstance(capacity, int) and capacity >= 2, capacity
        # As many tasks as the capacity all run at once: each waits until every one has started.
        futures = [self.engine.submit(wait_for_others, str(self.tmp), i, capacity) for i in range(capacity)]
        assert sorted(f.result(timeout=WAIT) for f in futures) == list(range(capacity))

    def test_a_task_learns_which_worker_it_runs_on(self) -> None:
        assert current_worker() is None, "the driver runs no task"
        for submit in (self.engine.submit, self.engine.submit_dedicated):
            info, from_thread = submit(where_am_i).result(timeout=WAIT)
            assert info is not None and info.engine == self.engine.name
            assert info.pid != os.getpid(), "tasks run in worker processes"
            assert info.worker_id and info.node_id and info.host
            assert from_thread == info, "threads the task starts see it too"
