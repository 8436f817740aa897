"""The engine contract: one test suite every engine passes, unchanged.

Subclass :class:`EngineContract` in a test module, name the subclass ``Test...`` so pytest
collects it, and override :meth:`~EngineContract.make_engine`. The tasks are module-level
functions of this module, so engines that pickle tasks (spawn, Ray, Dask) can run them, and
they synchronise through files in a temporary directory the driver and the workers share.

Capability flags, for what only some engines can promise, are class attributes a subclass sets:

- ``shares_memory_locally``: ``SharedRef.key`` names a ``multiprocessing.shared_memory`` block
  on this machine that holds the shared object, and is unlinked at shutdown.
- ``reports_lost_worker_pid``: ``WorkerLost.pid`` is the pid of the process that died.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import shutil
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zoopipe_core.engines.base import (
    Engine,
    RemoteError,
    WorkerEnvironment,
    WorkerLost,
    report_progress,
)

#: Seconds any single wait in the suite may take before the test fails.
WAIT = 30.0


# --------------------------------------------------------------------------- synchronisation


def wait_for(condition: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """Poll ``condition`` until it returns something truthy, and return that; fail after
    ``timeout`` seconds with ``what`` in the message."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.01)


def touch(path: str | os.PathLike[str]) -> None:
    Path(path).write_text("set")


# --------------------------------------------------------------------------- tasks


class UnpicklableTaskError(Exception):
    """An exception that cannot travel back to the driver: it holds a lock."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


def add(a: int, b: int, *, scale: int = 1) -> int:
    return (a + b) * scale


def raise_value_error(message: str) -> None:
    raise ValueError(message)


def raise_unpicklable(message: str) -> None:
    raise UnpicklableTaskError(message)


def wait_for_flag(started: str, flag: str) -> str:
    """Signal that the task runs, then wait until the driver sets ``flag``."""
    touch(started)
    wait_for(lambda: os.path.exists(flag), f"the driver to create {flag}")
    return "released"


def kill_own_process(pid_file: str) -> None:
    Path(pid_file).write_text(str(os.getpid()))
    os.kill(os.getpid(), signal.SIGKILL)


def ignore_stop_requests(started: str) -> None:
    """Run until killed, swallowing every polite request to stop."""
    touch(started)
    while True:
        try:
            time.sleep(0.05)
        except BaseException:
            pass


def describe_shared(ref: Any, check_shared_memory: bool) -> dict[str, Any]:
    obj = ref.get()
    description = {
        "key": ref.key,
        "size": len(obj),
        "sha256": hashlib.sha256(obj).hexdigest(),
        "cached": ref.get() is obj,
    }
    if check_shared_memory:
        from multiprocessing import shared_memory

        block = shared_memory.SharedMemory(name=ref.key)
        description["block_size"] = block.size
        block.close()
    return description


def report_then_wait(key: str, flag: str) -> str:
    report_progress(key, {"done": 1, "total": 2})
    wait_for(lambda: os.path.exists(flag), f"the driver to create {flag}")
    report_progress(key, {"done": 2, "total": 2})
    return "finished"


def read_env(name: str) -> str | None:
    return os.environ.get(name)


def import_attribute(module: str, attribute: str) -> Any:
    import importlib

    return getattr(importlib.import_module(module), attribute)


# --------------------------------------------------------------------------- the suite


class _ContractFailure(AssertionError):
    pass


def _raises(expected: type[BaseException], call: Callable[[], Any]) -> BaseException:
    try:
        call()
    except expected as exc:
        return exc
    raise _ContractFailure(f"expected {expected.__name__} from {call}")


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
        _raises(RuntimeError, self.engine.start)
        self.engine.shutdown()
        assert not self.engine.is_running
        self.engine.shutdown()  # a no-op once stopped
        self.engine.start()  # an engine can run again after a shutdown
        assert self.engine.submit(add, 2, 2).result(timeout=WAIT) == 4

    def test_start_with_pipes_says_to_use_a_pipe_manager(self) -> None:
        # ZooPipe's spelling, engine.start(pipes): refused before anything starts.
        error = _raises(TypeError, lambda: self.engine.start([object()]))
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

    def test_context_manager_stops_work_when_the_block_raises(self) -> None:
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
        error = _raises(ValueError, lambda: future.result(timeout=WAIT))
        assert type(error) is ValueError and str(error) == "bad row 7"
        remote = RemoteError.of(error)
        assert remote is not None, "the original exception must carry a RemoteError cause"
        assert (remote.exc_type, remote.message) == ("ValueError", "bad row 7")
        assert "raise_value_error" in remote.remote_traceback
        assert "ValueError: bad row 7" in remote.remote_traceback

    def test_an_exception_that_cannot_travel_comes_back_as_remote_error(self) -> None:
        future = self.engine.submit(raise_unpicklable, "holds a lock")
        error = _raises(RemoteError, lambda: future.result(timeout=WAIT))
        assert error.exc_type.endswith("UnpicklableTaskError")
        assert error.message == "holds a lock"
        assert "raise_unpicklable" in error.remote_traceback

    def test_a_killed_worker_fails_only_its_own_future(self) -> None:
        started, release, pid_file = self.path("started"), self.path("release"), self.path("pid")
        survivor = self.engine.submit(wait_for_flag, started, release)
        wait_for(lambda: os.path.exists(started), "the surviving task to start")
        victim = self.engine.submit(kill_own_process, pid_file)
        error = _raises(WorkerLost, lambda: victim.result(timeout=WAIT))
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
        error = _raises(
            FileNotFoundError,
            lambda: self.engine.prepare(WorkerEnvironment(code_paths=[missing])),
        )
        assert missing in str(error)

    # ------------------------------------------------------------------ sharing

    def test_share_sends_a_large_object_once(self) -> None:
        data = bytes(range(256)) * (50 * 2**20 // 256)  # 50 MiB
        ref = self.engine.share(data)
        assert len(pickle.dumps(ref)) < 10_000, "tasks must receive a handle, not the object"
        futures = [
            self.engine.submit(describe_shared, ref, self.shares_memory_locally) for _ in range(2)
        ]
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
            _raises(FileNotFoundError, lambda: shared_memory.SharedMemory(name=ref.key))

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
        error = _raises(ValueError, lambda: future.result(timeout=WAIT))
        assert type(error) is ValueError and str(error) == "bad row 7"
        remote = RemoteError.of(error)
        assert remote is not None and "raise_value_error" in remote.remote_traceback
        _raises(TypeError, lambda: self.engine.submit_dedicated("not callable"))

    def test_submit_dedicated_killed_worker_is_worker_lost(self) -> None:
        pid_file = self.path("pid")
        victim = self.engine.submit_dedicated(kill_own_process, pid_file)
        error = _raises(WorkerLost, lambda: victim.result(timeout=WAIT))
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


# --------------------------------------------------------------------------- the PipeManager suite


try:
    from pydantic import BaseModel as _BaseModel
except ImportError:  # pragma: no cover - pydantic is a core dependency
    _BaseModel = object  # type: ignore[assignment,misc]


class UserSchema(_BaseModel):  # type: ignore[misc,valid-type]
    """The record of the PipeManager suite's inputs (the schema of the PipeManager docs).

    Example:
        >>> UserSchema(user_id="7", username="ada", email="a@x.io").user_id
        7
    """

    user_id: int
    username: str
    email: str


class _LogRecords(logging.Handler):
    """Collects the log records of a logger it is added to."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class KillOnce:
    """A transform that SIGKILLs its own worker on the record with ``user_id == on_id``, the
    first time only: it creates ``marker`` just before, and does nothing once it exists.

    Example:
        >>> KillOnce("/nonexistent/marker", on_id=5)([{"user_id": 1}])
        [{'user_id': 1}]
    """

    def __init__(self, marker: str, on_id: int) -> None:
        self.marker, self.on_id = marker, on_id

    def __call__(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for record in records:
            if record.get("user_id") == self.on_id and not os.path.exists(self.marker):
                touch(self.marker)
                os.kill(os.getpid(), signal.SIGKILL)
        return records


class HoldAfterFirstBatch:
    """A transform that lets the first batch through, then waits until ``flag`` exists.

    Example:
        >>> HoldAfterFirstBatch("/nonexistent/flag")([{"n": 1}])
        [{'n': 1}]
    """

    def __init__(self, flag: str) -> None:
        self.flag = flag
        self.batches = 0

    def __call__(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.batches += 1
        if self.batches > 1:
            wait_for(lambda: os.path.exists(self.flag), f"the driver to create {self.flag}")
        return records


class NeverEnds:
    """A transform that touches ``started`` and then never returns on its own (a pipe that
    only a shutdown stops).

    Example:
        >>> NeverEnds("started").started
        'started'
    """

    def __init__(self, started: str) -> None:
        self.started = started

    def __call__(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        touch(self.started)
        while True:
            time.sleep(0.05)


def write_users(path: str | os.PathLike[str], first: int, count: int, bad_every: int = 0) -> str:
    """A JSON Lines file of ``count`` users from ``user_id == first``; with ``bad_every``, every
    such record has a user_id that fails validation."""
    import json

    with open(path, "w") as file:
        for n in range(first, first + count):
            bad = bad_every and n % bad_every == 0
            record = {"user_id": f"bad-{n}" if bad else n, "username": f"user{n}", "email": f"u{n}@x.io"}
            file.write(json.dumps(record) + "\n")
    return os.fspath(path)


def read_lines(path: str | os.PathLike[str]) -> list[str]:
    with open(path) as file:
        return file.read().splitlines()


class PipeManagerContract:
    """The PipeManager suite, run against an engine; subclass it once per engine.

    Override :meth:`make_engine` to return a new, stopped engine with at least 2 workers; each
    test makes its own managers, each on a new engine that the manager starts and the test
    shuts down when it ends (a manager never shuts down an engine it was given). ``self.tmp`` is a
    temporary directory that workers can read and write. The transforms and schema are
    module-level classes of this module, so engines that pickle pipes can ship them.

    Example:
        >>> from zoopipe_core.engines import MultiProcessEngine
        >>> class TestManagerOnProcesses(PipeManagerContract):
        ...     def make_engine(self):
        ...         return MultiProcessEngine(max_workers=2)
        >>> case = TestManagerOnProcesses()
        >>> case.setup_method()
        >>> case.test_start_twice_is_an_error()
        >>> case.teardown_method()
    """

    #: Set True when the engine's WorkerLost carries the dead worker's pid and signal.
    reports_lost_worker_pid = False

    def make_engine(self) -> Engine:
        """A new, stopped engine under test; subclasses override this."""
        raise NotImplementedError(
            f"{type(self).__name__} must override make_engine() to return the engine under test"
        )

    def new_engine(self) -> Engine:
        """A new engine from :meth:`make_engine`, shut down when the test ends."""
        engine = self.make_engine()
        self._engines.append(engine)
        return engine

    def setup_method(self, method: Any = None) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="zoopipe-manager-contract-"))
        self._engines: list[Engine] = []

    def teardown_method(self, method: Any = None) -> None:
        try:
            for engine in self._engines:
                engine.shutdown(timeout=5.0)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def path(self, name: str) -> str:
        return str(self.tmp / name)

    def users_files(self, count: int = 3, per_file: int = 200, bad_every: int = 0) -> list[str]:
        return [
            write_users(self.path(f"users{i}.jsonl"), i * per_file, per_file, bad_every)
            for i in range(count)
        ]

    def pipe(self, source: Any, out: str, errors: str | None = None, transforms: Any = (),
             batch_size: int = 50) -> Any:
        from zoopipe_core import JSONInputAdapter, JSONOutputAdapter, Pipe, SingleThreadExecutor

        return Pipe(
            JSONInputAdapter(source),
            JSONOutputAdapter(out),
            error_output_adapter=JSONOutputAdapter(errors) if errors else None,
            schema_model=UserSchema,
            post_validation=list(transforms),
            executor=SingleThreadExecutor(batch_size=batch_size),
        )

    def expected(self, files: list[str], out: str, errors: str) -> tuple[list[str], list[str]]:
        """Outputs and error outputs of the files run one by one in this process, concatenated."""
        lines: list[str] = []
        error_lines: list[str] = []
        for i, source in enumerate(files):
            target, failed = self.path(f"expected{i}.jsonl"), self.path(f"expected-errors{i}.jsonl")
            self.pipe(source, target, failed).run()
            lines += read_lines(target)
            error_lines += read_lines(failed)
        return lines, error_lines

    # ------------------------------------------------------------------ tests

    def test_start_twice_is_an_error(self) -> None:
        from zoopipe_core import PipeManager

        files = self.users_files(count=2, per_file=200)  # 4 batches: the pipes wait after one
        hold = HoldAfterFirstBatch(self.path("release"))
        manager = PipeManager(
            [self.pipe(f, self.path(f"out{i}.jsonl"), transforms=[hold]) for i, f in enumerate(files)],
            engine=self.new_engine(),
        )
        manager.start()
        try:
            _raises(RuntimeError, manager.start)
            assert manager.is_running
        finally:
            touch(self.path("release"))
            assert manager.wait(WAIT)
        assert not manager.is_running and manager.report.status.value == "completed"

    def test_pipes_run_in_parallel_with_live_reports(self) -> None:
        from zoopipe_core import PipeManager

        files = self.users_files(count=2, per_file=300)
        release = self.path("release")
        pipes = [self.pipe(f, self.path(f"out{i}.jsonl"), transforms=[HoldAfterFirstBatch(release)])
                 for i, f in enumerate(files)]
        manager = PipeManager(pipes, engine=self.new_engine())
        with manager:
            wait_for(lambda: all(r.total_processed > 0 for r in manager.pipe_reports),
                     "progress from both workers while their pipes run")
            reports = manager.pipe_reports
            assert [r.pipe_index for r in reports] == [0, 1]
            assert all(r.is_alive and not r.is_finished for r in reports)
            assert all(r.ram_bytes > 0 for r in reports)
            flow = manager.report
            assert not flow.is_finished and flow.total_processed > 0 and flow.ram_bytes > 0
            touch(release)
        flow = manager.report
        assert flow.is_finished and not flow.has_error
        assert (flow.total_processed, flow.success_count, flow.error_count) == (600, 600, 0)
        assert manager.get_pipe_report(1).success_count == 300
        assert all(not r.is_alive for r in manager.pipe_reports)
        assert len(read_lines(self.path("out0.jsonl"))) == 300

    def test_list_of_files_sharded_without_merge(self) -> None:
        from zoopipe_core import PipeManager

        files = self.users_files(count=3, bad_every=7)
        out, errors = self.path("out.jsonl"), self.path("errors.jsonl")
        expected, expected_errors = self.expected(files, out, errors)
        manager = PipeManager.parallelize_pipe(self.pipe(files, out, errors), workers=2,
                                               engine=self.new_engine())
        assert manager.pipe_count == 3
        report = manager.run(show_progress=False)
        assert report.total_processed == 600 and report.error_count == len(expected_errors)
        parts = [self.path(f"out.part-{i:05d}.jsonl") for i in range(3)]
        error_parts = [self.path(f"errors.part-{i:05d}.jsonl") for i in range(3)]
        assert [line for p in parts for line in read_lines(p)] == expected
        assert [line for p in error_parts for line in read_lines(p)] == expected_errors
        assert not os.path.exists(out) and not os.path.exists(errors)

    def test_list_of_files_merged(self) -> None:
        import json

        from zoopipe_core import PipeManager

        files = self.users_files(count=3, bad_every=7)
        out, errors = self.path("out.jsonl"), self.path("errors.jsonl")
        expected, expected_errors = self.expected(files, out, errors)
        manager = PipeManager.parallelize_pipe(self.pipe(files, out, errors), workers=2,
                                               should_merge=True, engine=self.new_engine())
        manager.run(show_progress=False)
        assert read_lines(out) == expected
        assert read_lines(errors) == expected_errors
        first_error = json.loads(read_lines(errors)[0])
        assert (first_error["source"], first_error["line"]) == (files[0], 1)  # user 0 is bad
        assert not [n for n in os.listdir(self.tmp) if ".part-" in n or n.endswith(".tmp")]

    def test_a_killed_worker_fails_only_its_shard_and_nothing_is_merged(self) -> None:
        from zoopipe_core import PipeManager
        from zoopipe_core.errors import PipelineError

        files = self.users_files(count=3, per_file=100)
        out = self.path("out.jsonl")
        kill = KillOnce(self.path("killed"), on_id=150)  # in the second file
        manager = PipeManager.parallelize_pipe(
            self.pipe(files, out, transforms=[kill]), workers=2, should_merge=True,
            engine=self.new_engine(),
        )
        error = _raises(PipelineError, lambda: manager.run(show_progress=False))
        # The failure names the pipe by its input and output, and the reason.
        assert f"pipe 1 ({files[1]} -> {self.path('out.part-00001.jsonl')}) failed" in str(error)
        report = manager.report
        assert report.failure_reasons[1].startswith(f"pipe 1 ({files[1]} -> ")
        assert report.is_finished and report.has_error and list(report.failures) == [1]
        lost = report.failures[1]
        assert isinstance(lost, WorkerLost), repr(lost)
        if self.reports_lost_worker_pid:
            assert lost.pid and lost.signal_name == "SIGKILL" and "SIGKILL" in str(error)
        assert manager.get_pipe_report(1).has_error
        assert [r.status.value for r in manager.pipe_reports] == ["completed", "failed", "completed"]
        assert not os.path.exists(out), "a failed shard must leave nothing under the merged name"
        leftovers = [n for n in os.listdir(self.tmp) if n.endswith(".tmp")]
        assert leftovers == [], f"the killed worker's temporary file was not removed: {leftovers}"

    def test_retries_rerun_a_killed_shard_and_every_record_arrives_once(self) -> None:
        from zoopipe_core import PipeManager

        files = self.users_files(count=3, per_file=100)
        out = self.path("out.jsonl")
        expected, _ = self.expected(files, out, self.path("unused-errors.jsonl"))
        kill = KillOnce(self.path("killed"), on_id=150)
        manager = PipeManager.parallelize_pipe(
            self.pipe(files, out, transforms=[kill]), workers=2, should_merge=True,
            engine=self.new_engine(), retries=1,
        )
        report = manager.run(show_progress=False)
        assert os.path.exists(self.path("killed")), "the worker was never killed"
        assert not report.has_error and report.success_count == 300
        assert sorted(read_lines(out)) == sorted(expected)

    def test_shutdown_stops_pipes_that_never_end(self) -> None:
        from zoopipe_core import PipeManager

        files = self.users_files(count=2, per_file=20)
        started = [self.path(f"started{i}") for i in range(2)]
        pipes = [self.pipe(f, self.path(f"out{i}.jsonl"), transforms=[NeverEnds(started[i])])
                 for i, f in enumerate(files)]
        manager = PipeManager(pipes, engine=self.new_engine())
        manager.start()
        wait_for(lambda: all(os.path.exists(s) for s in started), "both pipes to start")
        began = time.monotonic()
        manager.shutdown(timeout=1.0)
        elapsed = time.monotonic() - began
        assert elapsed < 1.0 + 4.0, f"shutdown(timeout=1.0) took {elapsed:.1f} s"
        assert not manager.is_running
        assert manager.report.status.value == "cancelled"
        assert [r.status.value for r in manager.pipe_reports] == ["cancelled", "cancelled"]
        assert not os.path.exists(self.path("out0.jsonl"))

    def test_shutdown_mid_run_leaves_no_files_and_no_noise(self) -> None:
        import logging

        from zoopipe_core import PipeManager

        # Shard 0 is one batch and completes (publishing its part); shards 1 and 2 hold.
        files = [write_users(self.path("users0.jsonl"), 0, 20)] + [
            write_users(self.path(f"users{i}.jsonl"), i * 1000, 300) for i in (1, 2)
        ]
        out, errors = self.path("out.jsonl"), self.path("errors.jsonl")
        hold = HoldAfterFirstBatch(self.path("never-released"))
        manager = PipeManager.parallelize_pipe(self.pipe(files, out, errors, transforms=[hold]), workers=2,
                                               should_merge=True, engine=self.make_engine())
        records = _LogRecords()
        logger = logging.getLogger("zoopipe")
        logger.addHandler(records)
        try:
            manager.start()
            wait_for(lambda: [r.status.value for r in manager.pipe_reports][0] == "completed"
                     and all(r.total_processed > 0 for r in manager.pipe_reports[1:]),
                     "shard 0 to complete and shards 1 and 2 to run")
            began = time.monotonic()
            manager.shutdown(timeout=5.0)
            elapsed = time.monotonic() - began
        finally:
            logger.removeHandler(records)
        assert elapsed < 5.0 + 4.0, f"shutdown(timeout=5.0) took {elapsed:.1f} s"
        assert manager.report.status.value == "cancelled"
        assert [r.status.value for r in manager.pipe_reports] == ["completed", "cancelled", "cancelled"]
        left = sorted(n for n in os.listdir(self.tmp) if not n.startswith("users"))
        assert left == [], f"a stopped run left files behind: {left}"
        noise = [r.getMessage() for r in records.records if r.levelno >= logging.WARNING]
        assert noise == [], f"shutdown logged: {noise}"

    def test_csv_files_merge_under_one_header_with_true_error_lines(self) -> None:
        import json

        from zoopipe_core import CSVInputAdapter, CSVOutputAdapter, JSONOutputAdapter, Pipe, PipeManager

        files = []
        for i in range(3):
            rows = "".join(f"{'x' if n % 5 == 0 else n},user{n},u{n}@x.io\n" for n in range(i * 20, i * 20 + 20))
            files.append(self.path(f"users{i}.csv"))
            Path(files[-1]).write_text("user_id,username,email\n" + rows)
        out, errors = self.path("out.csv"), self.path("errors.jsonl")
        pipe = Pipe(CSVInputAdapter(files), CSVOutputAdapter(out), error_output_adapter=JSONOutputAdapter(errors),
                    schema_model=UserSchema)
        report = PipeManager.parallelize_pipe(pipe, workers=2, should_merge=True,
                                              engine=self.new_engine()).run(show_progress=False)
        assert (report.success_count, report.error_count) == (48, 12)
        lines = read_lines(out)
        assert lines[0] == "user_id,username,email" and len(lines) == 49
        assert sorted(int(line.split(",")[0]) for line in lines[1:]) == [n for n in range(60) if n % 5]
        where = [(json.loads(line)["source"], json.loads(line)["line"]) for line in read_lines(errors)]
        assert where == [(files[n // 20], n % 20 + 2) for n in range(0, 60, 5)]  # +1 header, 1-based

    def test_one_jsonl_file_split_into_byte_ranges(self) -> None:
        import json

        from zoopipe_core import PipeManager

        source = write_users(self.path("users.jsonl"), 0, 500, bad_every=9)
        out, errors = self.path("out.jsonl"), self.path("errors.jsonl")
        expected, expected_errors = self.expected([source], out, errors)
        for should_merge in (False, True):
            manager = PipeManager.parallelize_pipe(self.pipe(source, out, errors), workers=2,
                                                   should_merge=should_merge, engine=self.new_engine())
            assert manager.pipe_count == 2
            manager.run(show_progress=False)
            if should_merge:
                lines, error_lines = read_lines(out), read_lines(errors)
            else:
                lines = read_lines(self.path("out.part-00000.jsonl")) + read_lines(self.path("out.part-00001.jsonl"))
                error_lines = (read_lines(self.path("errors.part-00000.jsonl"))
                               + read_lines(self.path("errors.part-00001.jsonl")))
            assert lines == expected and error_lines == expected_errors
        assert [json.loads(e)["line"] for e in error_lines] == [n + 1 for n in range(0, 500, 9)]

    def test_one_csv_file_split_with_quoted_newlines(self) -> None:
        import json

        from zoopipe_core import CSVInputAdapter, CSVOutputAdapter, JSONOutputAdapter, Pipe, PipeManager

        source = self.path("users.csv")
        rows = "".join(
            f'{"x" if n % 11 == 0 else n},"user\n{n}",u{n}@x.io\n' for n in range(400)
        )
        Path(source).write_text("user_id,username,email\n" + rows)
        out, errors = self.path("out.csv"), self.path("errors.jsonl")

        def pipe() -> Any:
            return Pipe(CSVInputAdapter(source), CSVOutputAdapter(out),
                        error_output_adapter=JSONOutputAdapter(errors), schema_model=UserSchema)

        pipe().run()
        expected, expected_errors = read_lines(out), read_lines(errors)
        os.remove(out), os.remove(errors)
        report = PipeManager.parallelize_pipe(pipe(), workers=2, should_merge=True,
                                              engine=self.new_engine()).run(show_progress=False)
        assert (report.success_count, report.error_count) == (400 - 37, 37)
        assert read_lines(out) == expected and read_lines(errors) == expected_errors
        assert [json.loads(e)["line"] for e in expected_errors] == [2 + 2 * n for n in range(0, 400, 11)]

    def test_parquet_split_by_row_groups_and_merged(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from zoopipe_core import ParquetInputAdapter, ParquetOutputAdapter, Pipe, PipeManager

        source, out = self.path("users.parquet"), self.path("out.parquet")
        table = pa.table({"user_id": list(range(300)), "username": [f"u{n}" for n in range(300)],
                          "email": [f"u{n}@x.io" for n in range(300)]})
        for groups, workers in ((100, 2), (300, 3)):  # 3 groups over 2 workers; 1 group over 3
            pq.write_table(table, source, row_group_size=groups)
            manager = PipeManager.parallelize_pipe(
                Pipe(ParquetInputAdapter(source), ParquetOutputAdapter(out), schema_model=UserSchema),
                workers=workers, should_merge=True, engine=self.new_engine(),
            )
            assert manager.pipe_count == workers
            manager.run(show_progress=False)
            assert pq.read_table(out).column("user_id").to_pylist() == list(range(300))
