"""MultiProcessEngine: the engine contract, plus what only local processes promise."""

from __future__ import annotations

import operator
import os
import pickle
import signal
import threading
from pathlib import Path

import pytest

from zoopipe_core import plugins
from zoopipe_core.engines import (
    Engine,
    MultiProcessEngine,
    RemoteError,
    WorkerEnvironment,
    WorkerLost,
    report_progress,
)
from zoopipe_core.testing import WAIT, EngineContract, ignore_stop_requests, touch, wait_for


class TestMultiProcessEngine(EngineContract):
    shares_memory_locally = True
    reports_lost_worker_pid = True

    def make_engine(self) -> MultiProcessEngine:
        return MultiProcessEngine(max_workers=2)


@pytest.fixture
def engine():
    engine = MultiProcessEngine(max_workers=2)
    yield engine
    engine.shutdown()


def test_resolve_engine_returns_a_new_multiprocess_engine():
    engine = plugins.resolve_engine("multiprocess")
    assert isinstance(engine, MultiProcessEngine) and isinstance(engine, Engine)
    assert engine.name == "multiprocess" and not engine.is_running
    assert engine.max_workers == (os.cpu_count() or 1)
    assert plugins.resolve_engine("multiprocess") is not engine


def test_invalid_options_say_what_to_pass():
    with pytest.raises(ValueError, match="max_workers must be a positive int, got 0"):
        MultiProcessEngine(max_workers=0)
    with pytest.raises(ValueError, match=r"mp_context='threads' is not a start method.*fork"):
        MultiProcessEngine(mp_context="threads")


def _count_running(directory: str, index: int) -> int:
    """Mark this task started, wait until two tasks have, and count the unfinished ones."""
    folder = Path(directory)
    touch(folder / f"started-{index}")
    wait_for(lambda: len(list(folder.glob("started-*"))) >= 2, "a second task to start")
    running = len(list(folder.glob("started-*"))) - len(list(folder.glob("finished-*")))
    touch(folder / f"finished-{index}")
    return running


def test_max_workers_limits_the_processes_running_at_once(engine, tmp_path):
    # A task counts started minus finished tasks; its marker is written before its process
    # exits, and the next process starts only after an exit, so the count can never pass 2.
    futures = [engine.submit(_count_running, str(tmp_path), i) for i in range(6)]
    counts = [f.result(timeout=WAIT) for f in futures]
    assert max(counts) == 2, counts


def test_fork_runs_closures(engine):
    offset = 40
    assert engine.submit(lambda: offset + 2).result(timeout=WAIT) == 42


def test_spawn_needs_picklable_tasks_and_runs_module_level_functions():
    with MultiProcessEngine(max_workers=1, mp_context="spawn") as engine:
        with pytest.raises(TypeError, match=r"cannot send .*define the function at module level"):
            engine.submit(lambda: 1)
        assert engine.submit(operator.mul, 6, 7).result(timeout=WAIT) == 42


def _exit_hard(code: int) -> None:
    os._exit(code)


def test_a_worker_that_exits_reports_its_exit_code(engine):
    error = engine.submit(_exit_hard, 3).exception(timeout=WAIT)
    assert isinstance(error, WorkerLost)
    assert error.exitcode == 3 and error.signal_name is None
    assert "exited with code 3 before returning a result" in str(error)
    assert "_exit_hard" in str(error)


def test_a_killed_worker_names_its_pid_and_signal(engine):
    error = engine.submit(lambda: os.kill(os.getpid(), signal.SIGKILL)).exception(timeout=WAIT)
    assert isinstance(error, WorkerLost)
    assert error.exitcode == -signal.SIGKILL and error.signal_name == "SIGKILL"
    assert f"worker process {error.pid} " in str(error) and "out-of-memory" in str(error)
    assert pickle.loads(pickle.dumps(error)).pid == error.pid


def test_an_unpicklable_result_fails_only_its_future(engine):
    bad = engine.submit(threading.Lock)
    good = engine.submit(operator.add, 1, 2)
    error = bad.exception(timeout=WAIT)
    assert isinstance(error, TypeError)
    assert "return value of" in str(error) and "could not be sent to the driver" in str(error)
    assert good.result(timeout=WAIT) == 3


def test_non_exception_failures_come_back_as_remote_error(engine):
    def interrupted():
        raise KeyboardInterrupt("stop")

    error = engine.submit(interrupted).exception(timeout=WAIT)
    assert type(error) is RemoteError and error.exc_type == "KeyboardInterrupt"


def _cleanup_on_stop(started: str, cleaned: str) -> None:
    try:
        touch(started)  # inside the try: a stop request may come as soon as the file exists
        threading.Event().wait()
    finally:
        touch(cleaned)


def test_shutdown_lets_a_stopping_task_run_its_cleanup(engine, tmp_path):
    started, cleaned = tmp_path / "started", tmp_path / "cleaned"
    future = engine.submit(_cleanup_on_stop, str(started), str(cleaned))
    wait_for(started.exists, "the task to start")
    engine.shutdown(timeout=WAIT)
    assert cleaned.exists(), "SIGTERM must unwind the task so its finally blocks run"
    assert future.cancelled()


def test_queued_tasks_are_cancelled_by_shutdown(tmp_path):
    engine = MultiProcessEngine(max_workers=1)
    started = tmp_path / "started"
    running = engine.submit(_cleanup_on_stop, str(started), str(tmp_path / "cleaned"))
    queued = engine.submit(operator.add, 1, 1)
    wait_for(started.exists, "the first task to start")
    engine.shutdown()
    assert running.cancelled() and queued.cancelled()


def test_future_cancel_stops_the_worker_too(engine, tmp_path):
    started, cleaned = tmp_path / "started", tmp_path / "cleaned"
    future = engine.submit(_cleanup_on_stop, str(started), str(cleaned))
    wait_for(started.exists, "the task to start")
    assert future.cancel()
    wait_for(cleaned.exists, "the cancelled task to unwind")


def test_a_cancelled_task_that_ignores_sigterm_is_killed_after_the_grace(tmp_path):
    engine = MultiProcessEngine(max_workers=1)
    engine.cancel_grace = 0.3
    try:
        for round_ in range(2):  # the engine keeps working after a kill
            started = tmp_path / f"started-{round_}"
            stubborn = engine.submit(ignore_stop_requests, str(started))
            wait_for(started.exists, "the stubborn task to start")
            assert engine.cancel(stubborn)
            # The only slot frees when the stubborn process has been killed.
            assert engine.submit(operator.add, 1, round_).result(timeout=WAIT) == 1 + round_
    finally:
        engine.shutdown()


def test_progress_from_threads_started_by_the_task(engine):
    def report_from_a_thread():
        thread = threading.Thread(target=report_progress, args=("thread", {"ok": True}))
        thread.start()
        thread.join()

    engine.submit(report_from_a_thread).result(timeout=WAIT)
    # Progress and result share one pipe, in order: the payload is in before the result.
    assert engine.progress()["thread"] == {"ok": True}


def test_report_progress_outside_a_task_returns_false():
    assert report_progress("driver", {"rows": 1}) is False
    with pytest.raises(TypeError, match="payload must be a dict"):
        report_progress("driver", 5)  # type: ignore[arg-type]


def test_a_broken_progress_callback_does_not_stop_results(engine, caplog):
    def broken(key, payload):
        raise RuntimeError("display crashed")

    unsubscribe = engine.on_progress(broken)
    assert engine.submit(lambda: report_progress("k", {"n": 1}) and 7).result(timeout=WAIT) == 7
    assert "progress callback" in caplog.text
    unsubscribe()


def test_shared_buffers_are_read_only_views_of_shared_memory(engine):
    ref = engine.share(pickle.PickleBuffer(bytearray(b"weights" * 1000)))

    def inspect(ref):
        view = ref.get()
        return type(view).__name__, view.readonly, type(view.obj).__name__, bytes(view[:7])

    assert engine.submit(inspect, ref).result(timeout=WAIT) == (
        "memoryview",
        True,
        "mmap",
        b"weights",
    )


def test_a_shared_object_is_gone_after_shutdown(engine):
    ref = engine.share({"model": "weights"})
    assert ref.get() == {"model": "weights"}  # the driver can read it too
    engine.shutdown()
    with pytest.raises(LookupError, match="the engine that shared it was shut down"):
        ref.get()


def test_share_rejects_objects_that_do_not_pickle(engine):
    with pytest.raises(TypeError, match="cannot share a lock: it does not pickle"):
        engine.share(threading.Lock())


def test_code_paths_accept_packages_and_modules(engine, tmp_path):
    package = tmp_path / "lib" / "zoopipe_pkg_under_test"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("NAME = 'package'\n")
    module = tmp_path / "mods" / "zoopipe_mod_under_test.py"
    module.parent.mkdir()
    module.write_text("NAME = 'module'\n")
    environment = WorkerEnvironment(code_paths=[package, str(module)])
    assert environment.import_paths() == [str(package.parent), str(module.parent)]
    engine.prepare(environment)

    def names():
        import zoopipe_mod_under_test
        import zoopipe_pkg_under_test

        return zoopipe_pkg_under_test.NAME, zoopipe_mod_under_test.NAME

    assert engine.submit(names).result(timeout=WAIT) == ("package", "module")


def test_a_worker_cannot_submit_through_its_drivers_engine(engine):
    def nested():
        return engine.submit(operator.add, 1, 1)

    error = engine.submit(nested).exception(timeout=WAIT)
    assert isinstance(error, RuntimeError) and "Create a new engine inside the task" in str(error)


def test_shutdown_from_a_callback_is_refused_with_a_reason(engine):
    errors = []

    def stop_engine(future):
        try:
            engine.shutdown()
        except RuntimeError as exc:
            errors.append(str(exc))

    engine.submit(operator.add, 1, 1).add_done_callback(stop_engine)
    wait_for(lambda: errors, "the callback to run")
    assert "call it from another thread" in errors[0]
    assert engine.is_running


def test_cancel_rejects_futures_from_elsewhere(engine):
    from concurrent.futures import Future

    engine.start()
    with pytest.raises(ValueError, match="did not return"):
        engine.cancel(Future())


def test_capacity_is_max_workers_and_tasks_know_their_process():
    from zoopipe_core.engines import current_worker

    with MultiProcessEngine(max_workers=3) as engine:
        assert engine.capacity() == 3
        info = engine.submit(current_worker).result(timeout=WAIT)
    assert info is not None and info.engine == "multiprocess"
    assert info.worker_id == str(info.pid) and info.pid != os.getpid()
    assert current_worker() is None


def test_submit_reuses_idle_worker_processes_like_a_pool(engine):
    # The first task starts a process; the next ones run in an idle one instead of a new fork.
    pids = {engine.submit(os.getpid).result(timeout=WAIT) for _ in range(10)}
    assert len(pids) <= engine.max_workers and os.getpid() not in pids


def test_submit_dedicated_gets_a_process_of_its_own(engine):
    first = engine.submit_dedicated(os.getpid).result(timeout=WAIT)
    second = engine.submit_dedicated(os.getpid).result(timeout=WAIT)
    assert first != second


def test_a_closure_still_runs_when_idle_workers_cannot_take_it(engine):
    engine.submit(os.getpid).result(timeout=WAIT)  # leaves an idle worker
    offset = 5
    assert [engine.submit(lambda x: x + offset, n).result(timeout=WAIT) for n in range(4)] == [5, 6, 7, 8]


def test_a_task_after_a_lost_worker_runs_in_a_new_process(engine, tmp_path):
    from zoopipe_core.testing import kill_own_process

    pid_file = tmp_path / "pid"
    with pytest.raises(WorkerLost):
        engine.submit(kill_own_process, str(pid_file)).result(timeout=WAIT)
    assert engine.submit(os.getpid).result(timeout=WAIT) != int(pid_file.read_text())


def test_idle_workers_exit_at_shutdown():
    engine = MultiProcessEngine(max_workers=2)
    with engine:
        pids = {engine.submit(os.getpid).result(timeout=WAIT) for _ in range(4)}
    for pid in pids:
        wait_for(lambda pid=pid: not _alive(pid), f"idle worker {pid} to exit")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by anyone) counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_an_idle_worker_exits_after_its_idle_time(engine, monkeypatch):
    from zoopipe_core.engines import process_pool

    monkeypatch.setattr(process_pool, "IDLE_SECONDS", 0.3)
    pid = engine.submit(os.getpid).result(timeout=WAIT)
    wait_for(lambda: not _alive(pid), f"idle worker {pid} to exit after 0.3 s")
    assert engine.submit(os.getpid).result(timeout=WAIT) != pid
