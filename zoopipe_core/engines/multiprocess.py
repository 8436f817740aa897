"""MultiProcessEngine, the default engine: every task runs in its own process on this machine.

How it works:

- One process per task, at most ``max_workers`` at once; later submissions wait in a queue.
  On Linux processes are forked: they start in milliseconds, inherit every imported module,
  and a task may be a closure. Forking is safe for pipes because the Rust executor creates its
  threads inside ``Pipe.run()``, in the child, never before the fork.
- Each task gets its own pipe back to the driver, carrying progress messages and then the
  result. One driver thread, the supervisor, starts processes, reads the pipes and watches the
  process sentinels, so a worker that dies (SIGKILL, ``os._exit``, a segfault) fails only its
  own future with WorkerLost, and cannot corrupt a channel other tasks use.
- ``share()`` pickles an object once into a ``multiprocessing.shared_memory`` block. Buffers
  that support pickle protocol 5 (NumPy arrays, ``pickle.PickleBuffer``) are loaded as
  read-only views of that block, without a copy.
- Each task is granted ``usable CPUs / max_workers`` CPUs (:func:`~zoopipe_core.engines.task_cpus`):
  with the default ``max_workers``, one each, so a pipe runs on one thread instead of competing
  with the other workers through helper threads.
- Stopping a task (``cancel``, ``shutdown``) sends SIGTERM, which raises inside the task so its
  ``finally`` blocks run (a pipe aborts its output), then SIGKILL once the grace period ends.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import logging
import multiprocessing
import os
import pickle
import signal
import socket
import sys
import threading
import time
import weakref
from collections.abc import Callable
from multiprocessing import connection, shared_memory
from typing import Any

from zoopipe_core.engines.base import (
    Engine,
    callable_name,
    rebuild_failure,
    RemoteError,
    SharedRef,
    WorkerEnvironment,
    WorkerLost,
    progress_channel,
    signal_name,
)
from zoopipe_core.engines.main_guard import refuse_unguarded_main
from zoopipe_core.engines.resources import granted_cpus

_log = logging.getLogger(__name__)

#: Seconds a cancelled task has to stop after SIGTERM before it is killed.
CANCEL_GRACE = 5.0


def _default_start_method() -> str:
    return "fork" if sys.platform.startswith("linux") else "spawn"




# --------------------------------------------------------------------------- worker side


class _StopRequested(BaseException):
    """Raised in a task by SIGTERM. A BaseException, so ``except Exception`` does not swallow it."""


def _raise_stop_requested(signum: int, frame: Any) -> None:
    raise _StopRequested()


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, which containers and taskset narrow).

    Example:
        >>> usable_cpus() >= 1
        True
    """
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _worker_main(
    channel: connection.Connection, work: Any, environment: WorkerEnvironment, pickled: bool, cpus: float
) -> None:
    """A worker process: apply the environment, run one task, send its outcome, return."""
    signal.signal(signal.SIGTERM, _raise_stop_requested)
    # Ctrl-C in a terminal reaches the whole process group: the driver alone reacts to it,
    # and stops its tasks through SIGTERM, so they end as cancelled rather than failed.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    send_lock = threading.Lock()  # tasks may report progress from several threads

    def send(message: tuple[Any, ...]) -> None:
        with send_lock:
            channel.send(message)

    name = "the task"
    try:
        # Before unpickling the task: its function may live under a code path.
        sys.path[:0] = [p for p in environment.import_paths() if p not in sys.path]
        os.environ.update(environment.env_vars)
        fn, args, kwargs = pickle.loads(work) if pickled else work
        name = callable_name(fn)
        with granted_cpus(cpus), progress_channel(lambda key, payload: send(("progress", key, payload))):
            outcome: tuple[Any, ...] = ("ok", fn(*args, **kwargs))
    except _StopRequested:
        return  # the driver cancelled this task; nobody waits for its outcome
    except BaseException as exc:
        outcome = _failure(exc)
    try:
        send(outcome)
    except _StopRequested:
        return
    except Exception as exc:
        # The result does not pickle: nothing was written yet, so the pipe is still clean.
        try:
            raise TypeError(
                f"the return value of {name} ({type(outcome[1]).__name__}) could not be sent "
                f"to the driver: {exc}. Return picklable data, or write large results to a "
                "file and return its path"
            ) from exc
        except TypeError as unsendable:
            send(_failure(unsendable))


def _failure(exc: BaseException) -> tuple[str, RemoteError, bytes | None]:
    tb = exc.__traceback__
    if tb is not None and tb.tb_frame.f_code is _worker_main.__code__:
        exc = exc.with_traceback(tb.tb_next)  # the traceback starts in the user's code
    remote = RemoteError.from_exception(exc, worker=f"pid {os.getpid()}")
    try:
        original = pickle.dumps(exc)
    except Exception:
        original = None  # the driver raises the RemoteError instead
    return ("error", remote, original)


# --------------------------------------------------------------------------- driver side




_SIGNAL_HINTS = {
    "SIGKILL": "A SIGKILL often comes from the out-of-memory killer: check `dmesg` and the "
    "task's memory use. ",
    "SIGSEGV": "This is a crash in native code (an extension module). ",
    "SIGBUS": "This is a crash in native code (an extension module). ",
    "SIGABRT": "Native code aborted the process. ",
}


def _worker_lost(name: str, pid: int | None, exitcode: int | None) -> WorkerLost:
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
class _Task:
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


# Forks happen under this lock, and each task's write end is closed in the driver before the
# next fork, so no worker inherits another task's write end (which would hide that task's EOF).
_fork_lock = threading.Lock()


class _Supervisor:
    """Owns one run's worker processes: starts queued tasks, reads their channels, reaps them.

    Processes are started, signalled and joined only from its thread, so the set of things
    waited on needs no locking. Other threads queue tasks and flag stops, then wake it up.
    """

    def __init__(
        self,
        context: Any,
        max_workers: int,
        record_progress: Callable[[str, dict[str, Any]], None],
    ) -> None:
        self.owner_pid = os.getpid()
        self._context = context
        self._max_workers = max_workers
        self._cpus_per_task = usable_cpus() / max_workers
        self._record_progress = record_progress
        self._lock = threading.Lock()
        self._queue: collections.deque[_Task] = collections.deque()
        self._running: list[_Task] = []
        self._close_deadline: float | None = None
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._wake_writer.setblocking(False)
        self._thread = threading.Thread(
            target=self._run, name="zoopipe-multiprocess-supervisor", daemon=True
        )
        self._thread.start()

    # ------------------------------------------------------------------ called from any thread

    def submit(self, task: _Task) -> None:
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

    def _on_done(self, task: _Task, future: concurrent.futures.Future[Any]) -> None:
        if not future.cancelled():
            return
        # Futures stay pending while their task runs, so cancel() works on running tasks; this
        # call tells concurrent.futures.wait() and as_completed() about the cancellation.
        future.set_running_or_notify_cancel()
        with self._lock:
            task.stop_requested = True
        self._wake()

    def _wake(self) -> None:
        try:
            self._wake_writer.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # the buffer is full (a wake-up is already pending) or the run has ended

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
            return False
        waiting: dict[Any, _Task | None] = {self._wake_reader: None}
        for task in self._running:
            if task.channel is not None:
                waiting[task.channel] = task
            waiting[task.process.sentinel] = task
        deadlines = [t.kill_at for t in self._running if t.kill_at is not None]
        timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
        for ready in connection.wait(list(waiting), timeout):
            task = waiting[ready]
            if task is None:
                self._drain_wake_ups()
            elif task not in self._running:
                continue  # reaped earlier in this round
            elif ready is task.channel:
                self._read(task)
            else:
                self._reap(task)
        self._kill_overdue()
        return True

    def _start_queued(self) -> None:
        while True:
            with self._lock:
                if self._close_deadline is not None:
                    self._queue.clear()  # their futures were cancelled by close()
                    return
                if len(self._running) >= self._max_workers or not self._queue:
                    return
                task = self._queue.popleft()
                if task.future.cancelled():
                    continue
                self._running.append(task)
            self._launch(task)

    def _launch(self, task: _Task) -> None:
        with _fork_lock:
            reader, writer = self._context.Pipe(duplex=False)
            process = self._context.Process(
                target=_worker_main,
                args=(writer, task.work, task.environment, task.pickled, self._cpus_per_task),
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
            deadline = close_deadline if close_deadline is not None else now + CANCEL_GRACE
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

    def _read(self, task: _Task) -> None:
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
        kind = message[0]
        if kind == "progress":
            self._record_progress(message[1], message[2])
        elif kind == "ok":
            self._resolve(task, result=message[1])
        else:
            self._resolve(task, exception=rebuild_failure(message[1], message[2]))

    def _reap(self, task: _Task) -> None:
        # Read what the worker wrote before it exited: its result may still be in the pipe.
        while task.channel is not None and task.channel.poll(0):
            self._read(task)
        if task.channel is not None:
            task.channel.close()
            task.channel = None
        task.process.join()
        if not task.future.done():
            lost = _worker_lost(task.name, task.process.pid, task.process.exitcode)
            self._resolve(task, exception=lost)
        task.process.close()
        with self._lock:
            self._running.remove(task)

    @staticmethod
    def _resolve(
        task: _Task, result: Any = None, exception: BaseException | None = None
    ) -> None:
        try:
            if exception is not None:
                task.future.set_exception(exception)
            else:
                task.future.set_result(result)
        except concurrent.futures.InvalidStateError:
            pass  # cancelled meanwhile: the cancellation stands

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


# --------------------------------------------------------------------------- shared memory

_ALIGNMENT = 64  # out-of-band buffers start on cache-line boundaries, as NumPy prefers

# Blocks attached in this process, with the object loaded from each: SharedRef.get() caches.
_attached: dict[str, tuple[shared_memory.SharedMemory, Any]] = {}
_attached_lock = threading.Lock()
# Blocks whose views a caller still holds after release; closing them would fail, and they
# are unmapped when the process exits.
_still_exported: list[shared_memory.SharedMemory] = []


def _aligned(offset: int) -> int:
    return -(-offset // _ALIGNMENT) * _ALIGNMENT


def _attach(name: str) -> shared_memory.SharedMemory:
    if sys.version_info >= (3, 13):
        # Only the creating engine may unlink the block, not a worker's resource tracker.
        return shared_memory.SharedMemory(name=name, track=False)
    return shared_memory.SharedMemory(name=name)


class SharedMemoryRef(SharedRef):
    """A handle to an object pickled into a shared-memory block by :meth:`MultiProcessEngine.share`.

    It carries only the block's name and layout. ``get()`` loads the object once per process;
    buffers that support pickle protocol 5 come back as read-only views of the block.

    Example:
        >>> import pickle
        >>> with MultiProcessEngine(max_workers=1) as engine:
        ...     ref = engine.share(bytes(10_000_000))
        ...     size = engine.submit(lambda r: len(r.get()), ref).result()
        >>> size, len(pickle.dumps(ref)) < 1000
        (10000000, True)
    """

    def __init__(self, name: str, pickle_size: int, buffer_spans: tuple[tuple[int, int], ...]):
        self._name = name
        self._pickle_size = pickle_size
        self._buffer_spans = buffer_spans

    @property
    def key(self) -> str:
        """The name of the shared-memory block."""
        return self._name

    def get(self) -> Any:
        with _attached_lock:
            if self._name in _attached:
                return _attached[self._name][1]
            try:
                block = _attach(self._name)
            except FileNotFoundError as exc:
                raise LookupError(
                    f"shared object {self._name!r} is gone: the engine that shared it was shut "
                    "down. Share the object again with engine.share() after start()"
                ) from exc
            view = block.buf.toreadonly()
            buffers = [view[start : start + size] for start, size in self._buffer_spans]
            obj = pickle.loads(view[: self._pickle_size], buffers=buffers)
            _attached[self._name] = (block, obj)
            return obj

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self._name, self._pickle_size, self._buffer_spans))

    def __repr__(self) -> str:
        return f"<SharedMemoryRef {self._name}>"


def _write_shared(obj: Any) -> tuple[shared_memory.SharedMemory, SharedMemoryRef]:
    buffers: list[pickle.PickleBuffer] = []
    try:
        data = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
        raws = [buffer.raw() for buffer in buffers]
    except Exception as exc:
        raise TypeError(
            f"cannot share a {type(obj).__name__}: it does not pickle ({type(exc).__name__}: "
            f"{exc}). Share picklable data (bytes, arrays, dicts, models that pickle)"
        ) from exc
    spans, end = [], _aligned(len(data))
    for raw in raws:
        spans.append((end, raw.nbytes))
        end = _aligned(end + raw.nbytes)
    block = shared_memory.SharedMemory(create=True, size=max(end, 1))
    try:
        block.buf[: len(data)] = data
        for (start, size), raw in zip(spans, raws):
            block.buf[start : start + size] = raw
    except BaseException:
        block.close()
        block.unlink()
        raise
    return block, SharedMemoryRef(block.name, len(data), tuple(spans))


def _forget_attached(name: str) -> None:
    with _attached_lock:
        entry = _attached.pop(name, None)
    if entry is None:
        return
    block, _ = entry
    del entry
    try:
        block.close()
    except BufferError:
        _still_exported.append(block)


# --------------------------------------------------------------------------- the engine

# Running engines, for a forked child to renew their locks. (Shutting them down at exit is the
# engines' common exit hook, in engines/base.py.)
_live_engines: weakref.WeakSet[MultiProcessEngine] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # A fork may happen while another driver thread holds one of these locks; the child has no
    # such thread, so it gets fresh ones. Inherited engines then refuse work with a clear error.
    global _fork_lock, _attached_lock
    _fork_lock = threading.Lock()
    _attached_lock = threading.Lock()
    for engine in list(_live_engines):
        engine._renew_locks()


if hasattr(os, "register_at_fork"):  # POSIX only; Windows has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)


class MultiProcessEngine(Engine):
    """Runs each task in its own process on this machine; the default engine (``"multiprocess"``).

    ``max_workers`` (default: the CPUs this process may run on, :func:`usable_cpus`) processes
    run at once; further submissions queue. ``mp_context`` is the start method: ``"fork"`` on
    Linux (fast; tasks may be closures), ``"spawn"`` elsewhere (tasks and arguments must
    pickle). A worker that dies fails only its own future, with :class:`WorkerLost`. See the
    module docstring.

    Example:
        >>> from zoopipe_core.engines import MultiProcessEngine, report_progress
        >>> def double(n):
        ...     report_progress(f"task-{n}", {"rows": n})
        ...     return 2 * n
        >>> with MultiProcessEngine(max_workers=2) as engine:
        ...     futures = [engine.submit(double, n) for n in range(3)]
        ...     [future.result() for future in futures]
        [0, 2, 4]
        >>> sorted(engine.progress().items())
        [('task-0', {'rows': 0}), ('task-1', {'rows': 1}), ('task-2', {'rows': 2})]
    """

    name = "multiprocess"

    def __init__(self, max_workers: int | None = None, mp_context: str | None = None) -> None:
        super().__init__()
        if max_workers is None:
            max_workers = usable_cpus()
        if not isinstance(max_workers, int) or max_workers < 1:
            raise ValueError(f"max_workers must be a positive int, got {max_workers!r}")
        self.max_workers = max_workers
        method = mp_context or _default_start_method()
        if method not in multiprocessing.get_all_start_methods():
            raise ValueError(
                f"mp_context={method!r} is not a start method on this platform; choose one of "
                f"{', '.join(multiprocessing.get_all_start_methods())}"
            )
        self.mp_context = method
        self._context = multiprocessing.get_context(method)
        self._supervisor: _Supervisor | None = None
        self._shared: list[shared_memory.SharedMemory] = []

    def __repr__(self) -> str:
        return (
            f"<MultiProcessEngine max_workers={self.max_workers} mp_context={self.mp_context!r} "
            f"{self._state}>"
        )

    def _start(self) -> None:
        # Spawned (and forkserver) workers import the main script again: refuse an unguarded one.
        refuse_unguarded_main(
            f"MultiProcessEngine(mp_context={self.mp_context!r})", self.mp_context,
            "on Linux pass mp_context='fork'" if "fork" in multiprocessing.get_all_start_methods()
            else "",
        )
        self._supervisor = _Supervisor(self._context, self.max_workers, self._record_progress)
        _live_engines.add(self)

    def _shutdown(self, timeout: float) -> None:
        self._owned_supervisor("shut down")  # a worker must not unlink its driver's objects
        assert self._supervisor is not None
        self._supervisor.close(timeout)
        self._supervisor = None
        _live_engines.discard(self)
        shared, self._shared = self._shared, []
        for block in shared:
            _forget_attached(block.name)
            block.close()
            block.unlink()

    def _prepare(self, environment: WorkerEnvironment) -> None:
        # Workers run in this machine's interpreter, so requirements are already installed
        # and nothing is uploaded; code paths must exist, and are put on sys.path in workers.
        environment.resolved_code_paths()

    def _submit(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> concurrent.futures.Future[Any]:
        supervisor = self._owned_supervisor("submit a task")
        name = callable_name(fn)
        work: Any = (fn, args, kwargs)
        pickled = self.mp_context != "fork"
        if pickled:
            # Pickle now, so an unpicklable task fails here rather than in a worker.
            try:
                work = pickle.dumps(work, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as exc:
                raise TypeError(
                    f"cannot send {name} to a worker process: {type(exc).__name__}: {exc}. With "
                    f"mp_context={self.mp_context!r} the function and its arguments are pickled: "
                    "define the function at module level (no lambda or closure), or use "
                    "mp_context='fork' on Linux"
                ) from exc
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        supervisor.submit(_Task(future, name, work, pickled, self.environment))
        return future

    def _cancel(self, future: concurrent.futures.Future[Any]) -> bool:
        # The future stays pending while its task runs; the supervisor stops the process.
        return future.cancel()

    def _share(self, obj: Any) -> SharedRef:
        self._owned_supervisor("share an object")
        block, ref = _write_shared(obj)
        self._shared.append(block)
        return ref

    def _renew_locks(self) -> None:
        self._lifecycle = threading.RLock()
        self._progress_lock = threading.Lock()
        self._outstanding_lock = threading.Lock()

    def _owned_supervisor(self, action: str) -> _Supervisor:
        assert self._supervisor is not None
        if self._supervisor.owner_pid != os.getpid():
            raise RuntimeError(
                f"cannot {action}: this MultiProcessEngine was started in process "
                f"{self._supervisor.owner_pid} and this is its worker {os.getpid()}. Create a "
                "new engine inside the task instead"
            )
        return self._supervisor
