"""The process pool behind MultiProcessEngine: worker processes run by one supervisor thread.

- At most ``max_workers`` processes at once; later tasks wait in a queue. A reusable task (from
  ``submit``) goes to an idle worker when one runs the same environment, sent pickled over the
  worker's channel; otherwise it gets a new process. A worker stays idle :data:`IDLE_SECONDS`
  at most, and one is retired early when a task needs a new process and the limit is reached.
- Each task gets its own pipe back to the driver, carrying progress messages and then its
  :class:`~zoopipe_core.engines.Outcome`. The supervisor thread starts processes, reads the pipes
  and watches the process sentinels, so a worker that dies (SIGKILL, ``os._exit``, a segfault)
  fails only its own future with WorkerLost, and cannot corrupt a channel other tasks use.
- Stopping a task sends SIGTERM, which raises StopRequested inside the task so its ``finally``
  blocks run (a pipe aborts its output), then SIGKILL once the grace period ends.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import dataclasses
import logging
import os
import pickle
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing import connection
from typing import Any

from zoopipe_core.engines import tasks
from zoopipe_core.engines.environment import WorkerEnvironment
from zoopipe_core.engines.errors import WorkerLost, callable_name, signal_name
from zoopipe_core.engines.resources import usable_cpus
from zoopipe_core.engines.tasks import (
    Outcome,
    StopRequested,
    TaskProgress,
    WorkerInfo,
    run_call,
    settle_future,
)

_log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- worker side


def _raise_stop_requested(signum: int, frame: Any) -> None:
    raise StopRequested()


def _worker_main(
    channel: connection.Connection,
    work: Any,
    environment: WorkerEnvironment,
    pickled: bool,
    cpus: float,
    reusable: bool = False,
) -> None:
    """A worker process: apply the environment, run a task, send its outcome; a reusable one
    then waits for the next task (``("task", pickled work)``) until told to exit."""
    signal.signal(signal.SIGTERM, _raise_stop_requested)
    # Ctrl-C in a terminal reaches the whole process group: the driver alone reacts to it,
    # and stops its tasks through SIGTERM, so they end as cancelled rather than failed.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    send_lock = threading.Lock()  # tasks may report progress from several threads

    def send(message: tuple[Any, ...]) -> None:
        with send_lock:
            channel.send(message)

    try:
        # Before unpickling the task: its function may live under a code path.
        sys.path[:0] = [p for p in environment.import_paths() if p not in sys.path]
        os.environ.update(environment.env_vars)
        parent = os.getppid()
        while _run_one(send, work, pickled, cpus) and reusable:
            # Idle: wait for the next task. Later workers inherit the driver's end of this
            # channel, so a driver that died may never show as EOF: look at the parent too.
            while not channel.poll(1.0):
                if os.getppid() != parent:
                    return
            message = channel.recv()
            if message[0] != "task":
                return
            work, pickled = message[1], True
    except (StopRequested, EOFError, OSError):
        return  # the driver cancelled the task, retired this worker, or is gone


def _run_one(send: Callable[[tuple[Any, ...]], None], work: Any, pickled: bool, cpus: float) -> bool:
    """Run one task and send its outcome; False when it was stopped (nobody waits for it)."""

    def forward(sequence: int, key: str, payload: dict[str, Any]) -> None:
        send(("progress", key, payload))

    name = "the task"
    worker = f"pid {os.getpid()}"
    try:
        fn, args, kwargs = pickle.loads(work) if pickled else work
        name = callable_name(fn)
        outcome = run_call(
            fn,
            args,
            kwargs,
            token=str(os.getpid()),
            worker=WorkerInfo.local("multiprocess"),
            progress=TaskProgress(forward),
            cpus=cpus,
            where=worker,
        )
    except StopRequested:
        raise
    except BaseException as exc:
        outcome = Outcome.failure(exc, worker)
    if outcome.stopped:
        return False
    # The pipe is ordered: the progress already sent is the latest, it need not travel again.
    outcome = dataclasses.replace(outcome, progress={})
    try:
        send(("outcome", outcome))
    except StopRequested:
        raise
    except Exception as exc:
        # The result does not pickle: nothing was written yet, so the pipe is still clean.
        try:
            raise TypeError(
                f"the return value of {name} ({type(outcome.value).__name__}) could not be sent "
                f"to the driver: {exc}. Return picklable data, or write large results to a "
                "file and return its path"
            ) from exc
        except TypeError as unsendable:
            send(("outcome", Outcome.failure(unsendable, worker)))
    return True


# --------------------------------------------------------------------------- driver side

_SIGNAL_HINTS = {
    "SIGKILL": "A SIGKILL often comes from the out-of-memory killer: check `dmesg` and the "
    "task's memory use. ",
    "SIGSEGV": "This is a crash in native code (an extension module). ",
    "SIGBUS": "This is a crash in native code (an extension module). ",
    "SIGABRT": "Native code aborted the process. ",
}


def worker_lost(name: str, pid: int | None, exitcode: int | None) -> WorkerLost:
    killer = signal_name(exitcode)
    if killer is not None:
        how, hint = f"was killed by {killer}", _SIGNAL_HINTS.get(killer, "")
    else:
        how = f"exited with code {exitcode}"
        hint = "Something in the task ended its process (os._exit(), or a native library). "
    message = (
        f"worker process {pid} running {name} {how} before returning a result; other tasks "
        f"are unaffected. {hint}Resubmit the task if it is safe to run again"
    )
    return WorkerLost(message, pid, exitcode)


@dataclasses.dataclass(eq=False)
class PoolTask:
    """One task of a :class:`ProcessPool`: its future, and its process once started."""

    future: concurrent.futures.Future[Any]
    name: str
    work: Any  # (fn, args, kwargs), or its pickle for non-fork start methods
    pickled: bool
    environment: WorkerEnvironment
    process: Any = None
    channel: connection.Connection | None = None  # the driver's end; None once closed
    stop_requested: bool = False
    kill_at: float | None = None  # when SIGTERM was sent: the time SIGKILL follows
    killed: bool = False
    reusable: bool = False  # may run in a worker process that ran another task, and stay in it


@dataclasses.dataclass(eq=False)
class IdleWorker:
    """A worker process that finished a reusable task and waits for the next one."""

    process: Any
    channel: connection.Connection
    environment: WorkerEnvironment
    retire_at: float


#: Seconds an idle worker process waits for another task before it exits.
IDLE_SECONDS = 10.0


# Forks happen under this lock, and each task's write end is closed in the driver before the
# next fork, so no worker inherits another task's write end (which would hide that task's EOF).
_fork_lock = threading.Lock()


class ProcessPool:
    """Owns one run's worker processes: starts queued tasks, reads their channels, reaps them.

    Processes are started, signalled and joined only from its thread, so the set of things
    waited on needs no locking. Other threads queue tasks and flag stops, then wake it up.

    Example:
        >>> import concurrent.futures, multiprocessing
        >>> pool = ProcessPool(multiprocessing.get_context("fork"), 1, lambda key, payload: None)
        >>> future = concurrent.futures.Future()
        >>> pool.submit(PoolTask(future, "pow", (pow, (2, 5), {}), False, WorkerEnvironment()))
        >>> future.result(timeout=30)
        32
        >>> pool.close(grace=5.0)
    """

    def __init__(
        self,
        context: Any,
        max_workers: int,
        record_progress: Callable[[str, dict[str, Any]], None],
        cancel_grace: float = tasks.CANCEL_GRACE,
    ) -> None:
        self.owner_pid = os.getpid()
        self._context = context
        self._max_workers = max_workers
        self._cancel_grace = cancel_grace
        self._cpus_per_task = usable_cpus() / max_workers
        self._record_progress = record_progress
        self._lock = threading.Lock()
        self._queue: collections.deque[PoolTask] = collections.deque()
        self._running: list[PoolTask] = []
        self._idle: list[IdleWorker] = []  # only the supervisor thread touches it
        self._close_deadline: float | None = None
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._wake_writer.setblocking(False)
        self._thread = threading.Thread(target=self._run, name="zoopipe-multiprocess-supervisor", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ called from any thread

    def submit(self, task: PoolTask) -> None:
        task.future.add_done_callback(lambda future: self._on_done(task, future))
        with self._lock:
            self._queue.append(task)
        self._wake()

    def close(self, grace: float) -> None:
        """Cancel every unfinished task, stop the processes (SIGKILL after ``grace`` s), wait."""
        if threading.current_thread() is self._thread:
            raise RuntimeError(
                "shutdown() was called from a future or progress callback, which runs on the "
                "engine's supervisor thread; call it from another thread"
            )
        with self._lock:
            self._close_deadline = time.monotonic() + grace
            unfinished = [*self._queue, *self._running]
        for task in unfinished:
            task.future.cancel()
        self._wake()
        self._thread.join()
        self._wake_reader.close()
        self._wake_writer.close()

    def _on_done(self, task: PoolTask, future: concurrent.futures.Future[Any]) -> None:
        if not future.cancelled():
            return
        # Futures stay pending while their task runs, so cancel() works on running tasks; this
        # call tells concurrent.futures.wait() and as_completed() about the cancellation.
        future.set_running_or_notify_cancel()
        with self._lock:
            task.stop_requested = True
        self._wake()

    def _wake(self) -> None:
        # An error means the buffer is full (a wake-up is already pending) or the run has ended.
        with contextlib.suppress(BlockingIOError, OSError):
            self._wake_writer.send(b"\0")

    # ------------------------------------------------------------------ the supervisor thread

    def _run(self) -> None:
        try:
            while self._step():
                pass
        except BaseException as exc:
            # A bug here must not leave futures pending forever.
            _log.exception("the MultiProcessEngine supervisor failed")
            self._abandon(exc)

    def _step(self) -> bool:
        self._start_queued()
        self._signal_stops()
        if self._close_deadline is not None and not self._running:
            self._retire(list(self._idle))
            return False
        waiting: dict[Any, PoolTask | IdleWorker | None] = {self._wake_reader: None}
        for task in self._running:
            if task.channel is not None:
                waiting[task.channel] = task
            waiting[task.process.sentinel] = task
        for idle in self._idle:  # an idle worker that dies, or writes, is retired
            waiting[idle.channel] = idle
            waiting[idle.process.sentinel] = idle
        deadlines = [t.kill_at for t in self._running if t.kill_at is not None]
        deadlines += [idle.retire_at for idle in self._idle]
        timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
        for ready in connection.wait(list(waiting), timeout):
            owner = waiting[ready]
            if owner is None:
                self._drain_wake_ups()
            elif isinstance(owner, IdleWorker):
                if owner in self._idle:
                    self._retire([owner])
            elif owner not in self._running:
                continue  # reaped, or gone idle, earlier in this round
            elif ready is owner.channel:
                self._read(owner)
            else:
                self._reap(owner)
        self._kill_overdue()
        now = time.monotonic()
        self._retire([idle for idle in self._idle if idle.retire_at <= now])
        return True

    def _start_queued(self) -> None:
        while True:
            with self._lock:
                if self._close_deadline is not None:
                    self._queue.clear()  # their futures were cancelled by close()
                    return
                if not self._queue:
                    return
                task = self._queue[0]
                if task.future.cancelled():
                    self._queue.popleft()
                    continue
                idle = self._idle_for(task)
                if idle is None and len(self._running) + len(self._idle) >= self._max_workers:
                    if not self._idle or len(self._running) >= self._max_workers:
                        return
                    victim = self._idle[0]  # it cannot take this task: make room
                else:
                    victim = None
                    self._queue.popleft()
                    self._running.append(task)
            if victim is not None:
                self._retire([victim])
            elif idle is None or not self._hand_over(task, idle):
                self._launch(task)

    def _idle_for(self, task: PoolTask) -> IdleWorker | None:
        """An idle worker that can run ``task`` (started with the same environment)."""
        if not task.reusable:
            return None
        for idle in self._idle:
            if idle.environment is task.environment:
                return idle
        return None

    def _hand_over(self, task: PoolTask, idle: IdleWorker) -> bool:
        """Send ``task`` to the idle worker; False when it cannot go there (the work does not
        pickle, or the worker is gone), and the worker is retired."""
        self._idle.remove(idle)
        try:
            work = task.work if task.pickled else pickle.dumps(task.work, protocol=pickle.HIGHEST_PROTOCOL)
            idle.channel.send(("task", work))
        except Exception:
            # A closure or a lambda: a freshly forked process inherits it instead.
            self._retire([idle])
            return False
        task.process, task.channel = idle.process, idle.channel
        task.work = None
        return True

    def _retire(self, workers: list[IdleWorker]) -> None:
        """Tell idle workers to exit (they may be dead already) and reap them."""
        for idle in workers:
            if idle in self._idle:
                self._idle.remove(idle)
            with contextlib.suppress(OSError, ValueError):
                idle.channel.send(("exit",))
        for idle in workers:
            idle.process.join(timeout=1.0)
            if idle.process.exitcode is None:
                idle.process.kill()
                idle.process.join()
            idle.channel.close()
            idle.process.close()

    def _launch(self, task: PoolTask) -> None:
        with _fork_lock:
            reader, writer = self._context.Pipe(duplex=task.reusable)
            process = self._context.Process(
                target=_worker_main,
                args=(writer, task.work, task.environment, task.pickled, self._cpus_per_task, task.reusable),
                name=f"zoopipe-task:{task.name}",
            )
            try:
                process.start()
            except Exception as exc:
                reader.close()
                with self._lock:
                    self._running.remove(task)
                self._resolve(
                    task,
                    exception=RuntimeError(
                        f"could not start a worker process for {task.name}: "
                        f"{type(exc).__name__}: {exc}. Check the process and memory limits "
                        "of this machine (ulimit -u, free memory)"
                    ),
                )
                return
            finally:
                writer.close()  # the child holds its own copy
        task.process, task.channel = process, reader
        task.work = None  # the child has it; free the driver's reference

    def _signal_stops(self) -> None:
        with self._lock:
            close_deadline = self._close_deadline
            # Closing stops every process, including one still exiting after its result.
            stopping = [
                t
                for t in self._running
                if (t.stop_requested or close_deadline is not None) and t.process is not None
            ]
        now = time.monotonic()
        for task in stopping:
            deadline = close_deadline if close_deadline is not None else now + self._cancel_grace
            if task.killed:
                continue
            if task.kill_at is None:
                task.process.terminate()
                task.kill_at = deadline
            else:
                task.kill_at = min(task.kill_at, deadline)  # a shutdown shortens a cancel's grace

    def _kill_overdue(self) -> None:
        now = time.monotonic()
        for task in self._running:
            if task.kill_at is not None and task.kill_at <= now:
                task.process.kill()
                task.kill_at, task.killed = None, True  # its sentinel fires next

    def _drain_wake_ups(self) -> None:
        try:
            while self._wake_reader.recv(4096):
                pass
        except BlockingIOError:
            pass

    def _read(self, task: PoolTask) -> None:
        assert task.channel is not None
        try:
            data = task.channel.recv_bytes()
        except (EOFError, OSError):
            # The worker closed its end (it exited) or died mid-message; its sentinel decides.
            task.channel.close()
            task.channel = None
            return
        try:
            message = pickle.loads(data)
        except Exception as exc:
            self._resolve(
                task,
                exception=pickle.UnpicklingError(
                    f"a message from the worker running {task.name} could not be unpickled on "
                    f"the driver: {type(exc).__name__}: {exc}. Make sure the classes it returns "
                    "or reports are importable here (not defined in __main__ of a spawned run)"
                ),
            )
            return
        if message[0] == "progress":
            self._record_progress(message[1], message[2])
            return
        message[1].settle(task.future, task.name)
        with self._lock:
            keep = task.reusable and not task.stop_requested and self._close_deadline is None
            if keep:
                self._running.remove(task)
        if keep:
            assert task.channel is not None
            self._idle.append(
                IdleWorker(task.process, task.channel, task.environment, time.monotonic() + IDLE_SECONDS)
            )
            task.process = task.channel = None

    def _reap(self, task: PoolTask) -> None:
        # Read what the worker wrote before it exited: its result may still be in the pipe.
        while task.channel is not None and task.channel.poll(0):
            self._read(task)
        if task.channel is not None:
            task.channel.close()
            task.channel = None
        task.process.join()
        if not task.future.done():
            lost = worker_lost(task.name, task.process.pid, task.process.exitcode)
            self._resolve(task, exception=lost)
        task.process.close()
        with self._lock:
            self._running.remove(task)

    @staticmethod
    def _resolve(task: PoolTask, result: Any = None, exception: BaseException | None = None) -> None:
        settle_future(task.future, result, exception)

    def _abandon(self, error: BaseException) -> None:
        with self._lock:
            tasks = [*self._queue, *self._running]
            self._queue.clear()
        for task in tasks:
            if task.process is not None and task.process.exitcode is None:
                task.process.kill()
                task.process.join()
            self._resolve(
                task,
                exception=RuntimeError(
                    f"the MultiProcessEngine supervisor failed ({type(error).__name__}: "
                    f"{error}); this is a bug in zoopipe, please report it. Shut the engine "
                    "down and start it again"
                ),
            )
        with self._lock:
            self._running.clear()
        for idle in self._idle:
            idle.process.kill()
            idle.process.join()
        self._idle.clear()


def _renew_lock_in_child() -> None:
    # A fork may happen while another driver thread holds the lock; the child has no such thread.
    global _fork_lock
    _fork_lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX only; Windows has no fork
    os.register_at_fork(after_in_child=_renew_lock_in_child)
