"""The engine interface: where parallel work runs, for PipeManager, map, offload and model sharing.

An engine starts and stops workers, prepares their environment, runs callables on them as
futures, shares large objects with them, and carries live progress from them back to the
driver. Features are written only against :class:`Engine`, so they work on every engine;
``zoopipe_core.testing.EngineContract`` is the conformance suite each engine passes.

Plugin authors subclass :class:`Engine` and implement its ``_``-prefixed hooks; the public
methods around them enforce the lifecycle rules (start twice is an error, ``submit`` and
``share`` start a stopped engine, ``shutdown`` is idempotent) so every engine behaves alike.
See ``docs/engines.md``.
"""

from __future__ import annotations

import abc
import atexit
import concurrent.futures
import logging
import threading
from collections.abc import Callable
from typing import Any, ClassVar, Literal, TypeVar

from zoopipe_core.engines.environment import WorkerEnvironment
from zoopipe_core.engines.main_guard import refuse_start_while_importing_main
from zoopipe_core.engines.progress import ProgressCallback
from zoopipe_core.engines.shared import SharedRef
from zoopipe_core.engines.tasks import CANCEL_GRACE
from zoopipe_core.running import RunningSet

_log = logging.getLogger(__name__)


def _pipes_to_start_message(engine: Engine, args: tuple[Any, ...]) -> str:
    """Why ``engine.start(pipes)`` (ZooPipe's spelling) is refused, and what to write instead."""
    name = type(engine).__name__
    return (
        f"{name}.start() takes no pipes (got {len(args)} argument(s)): an engine runs tasks, a "
        f"PipeManager runs pipes on it. Write PipeManager(pipes, engine={name}(...)).run(), or "
        "manager.start() / wait() / shutdown(); engine.start() alone only starts the workers"
    )


_State = Literal["stopped", "running", "stopping"]
_E = TypeVar("_E", bound="Engine")

# Every engine running in this process: an engine nobody shut down is shut down at interpreter
# exit, so its workers, clusters and files do not outlive it. (A forked child has none.)
_running_engines: RunningSet[Engine] = RunningSet()


def running_engines() -> list[Engine]:
    """The engines started in this process and not shut down yet."""
    return _running_engines.snapshot()


def _shut_down_running_engines() -> None:
    for engine in _running_engines.snapshot():
        try:
            engine.shutdown()
        except Exception:
            _log.exception("shutting down %r at interpreter exit failed", engine)


def _track_running(engine: Engine, running: bool) -> None:
    if not running:
        _running_engines.discard(engine)
        return
    _running_engines.add(engine)
    # Registered again on every start so it runs before the exit handlers of the
    # libraries imported since (Ray's, distributed's, multiprocessing's): atexit runs them
    # last-registered first, and this one needs them still working.
    atexit.unregister(_shut_down_running_engines)
    atexit.register(_shut_down_running_engines)


class Engine(abc.ABC):
    """Where parallel work runs: local processes, a Ray or Dask cluster.

    Use it as a context manager, or call :meth:`start` and :meth:`shutdown`; :meth:`submit` and
    :meth:`share` start a stopped engine by themselves (like Ray's auto-init). An engine can be
    started again after a shutdown. Every method may be called from any thread.

    A started engine runs until :meth:`shutdown` (or the end of its ``with`` block), serving
    any number of ``PipeManager`` runs; one still running when the interpreter exits is shut
    down then.

    Plugin authors: subclass, set ``name`` (the registered name), call ``super().__init__()``,
    and implement the ``_start``, ``_shutdown``, ``_prepare``, ``_submit``, ``_cancel``,
    ``_share`` and ``_capacity`` hooks (and ``_submit_dedicated`` when tasks share workers). Run
    tasks on workers with :func:`~zoopipe_core.engines.run_call`; hand progress from workers to
    :meth:`_record_progress` (in order) or :meth:`_offer_progress` (numbered, any order).

    Example:
        >>> from zoopipe_core.engines import MultiProcessEngine
        >>> with MultiProcessEngine(max_workers=2) as engine:
        ...     futures = [engine.submit(pow, 2, n) for n in range(4)]
        ...     [f.result() for f in futures]
        [1, 2, 4, 8]
        >>> engine.is_running
        False
    """

    name: ClassVar[str] = ""

    #: True when :meth:`share` gives the workers of one machine one copy in shared memory
    #: (their ``ref.get()`` returns zero-copy views of it); False when each worker process
    #: receives its own copy.
    shares_memory: ClassVar[bool] = False

    #: Seconds a cancelled task has to stop once asked before its worker is killed; a shutdown
    #: gives its ``timeout`` instead. Set it on an engine before starting it.
    cancel_grace: float = CANCEL_GRACE

    def __init__(self) -> None:
        self._lifecycle = threading.RLock()
        self._state: _State = "stopped"
        self._environment = WorkerEnvironment()
        self._progress_lock = threading.Lock()
        self._progress: dict[str, dict[str, Any]] = {}
        self._progress_seen: dict[str, tuple[str, int]] = {}  # key -> (task token, sequence)
        self._progress_callbacks: list[ProgressCallback] = []
        self._outstanding_lock = threading.Lock()
        self._outstanding: set[concurrent.futures.Future[Any]] = set()
        self._run_count = 0

    # ------------------------------------------------------------------ lifecycle

    @property
    def run_count(self) -> int:
        """How many times this engine has been started. What :meth:`share` returned belongs to
        one run: a caller that keeps shared refs across calls shares again when this changed.

        Example:
            >>> from zoopipe_core.engines import MultiProcessEngine
            >>> engine = MultiProcessEngine(max_workers=1)
            >>> engine.run_count
            0
            >>> with engine:
            ...     engine.run_count
            1
        """
        return self._run_count

    @property
    def is_running(self) -> bool:
        """True between :meth:`start` (or the first ``submit``/``share``) and :meth:`shutdown`."""
        return self._state == "running"

    def start(self, *pipes: Any) -> None:
        """Start the engine: create or connect to its workers.

        Raises RuntimeError if it is already running; it may be started again after
        :meth:`shutdown`. Progress recorded by an earlier run is cleared. Pipes are not given
        here (ZooPipe's ``engine.start(pipes)``): a :class:`~zoopipe_core.PipeManager` runs them.
        """
        if pipes:
            raise TypeError(_pipes_to_start_message(self, pipes))
        with self._lifecycle:
            if self._state != "stopped":
                raise RuntimeError(
                    f"{self!r} is already {self._state}; call shutdown() before start(), "
                    "or create another engine"
                )
            refuse_start_while_importing_main(type(self).__name__)
            with self._progress_lock:
                self._progress.clear()
                self._progress_seen.clear()
            self._start()
            self._run_count += 1
            self._state = "running"
            _track_running(self, True)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop all work and release the engine's resources; a no-op when not running.

        Futures not finished yet are cancelled: queued tasks never start, running tasks are
        asked to stop (their ``finally`` blocks run) and are stopped forcefully once ``timeout``
        seconds have passed. Shared objects are released. Returns when the work has stopped,
        within about ``timeout`` plus a few seconds. Must not be called from a future's or a
        progress callback.
        """
        if timeout < 0:
            raise ValueError(f"shutdown() timeout must be >= 0 seconds, got {timeout}")
        with self._lifecycle:
            if self._state != "running":
                return
            self._state = "stopping"
        try:
            self._shutdown(timeout)
        except BaseException:
            with self._lifecycle:
                self._state = "running"
            raise
        with self._lifecycle:
            self._state = "stopped"
        _track_running(self, False)

    def __enter__(self: _E) -> _E:
        if not self.is_running:
            self.start()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        """On a clean exit, wait for every submitted task, then shut down (like
        ``concurrent.futures`` executors); when the block raised, shut down at once."""
        if exc_type is None:
            while pending := self._pending_futures():
                concurrent.futures.wait(pending)
        self.shutdown()

    # ------------------------------------------------------------------ environment

    @property
    def environment(self) -> WorkerEnvironment:
        """The environment given to the last :meth:`prepare` (an empty one before)."""
        return self._environment

    def prepare(self, environment: WorkerEnvironment) -> None:
        """Make workers ready to run the user's code: dependencies, code, environment variables.

        Applies to tasks submitted after it returns and replaces any earlier environment. May
        be called before :meth:`start` (a cluster engine can then pass the environment when it
        connects) or while running. Raises at once when the environment is unusable, such as
        FileNotFoundError for a missing code path. Does not start the engine.
        """
        if not isinstance(environment, WorkerEnvironment):
            raise TypeError(
                f"prepare() takes a WorkerEnvironment, got {type(environment).__name__}; "
                "build one with WorkerEnvironment(requirements=..., code_paths=..., ...)"
            )
        with self._lifecycle:
            self._prepare(environment)
            self._environment = environment

    # ------------------------------------------------------------------ tasks

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        """Run ``fn(*args, **kwargs)`` on a worker; starts the engine if it is stopped.

        The future resolves to the return value. When ``fn`` raises, the future raises the
        original exception with a :class:`RemoteError` as ``__cause__`` (or the RemoteError
        itself when the original cannot be rebuilt); when the worker dies, it raises
        :class:`WorkerLost`. A failure fails only its own future. Raises RuntimeError while the
        engine is shutting down.
        """
        return self._submit_tracked("submit", self._submit, fn, args, kwargs)

    def submit_dedicated(
        self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[Any]:
        """Run ``fn(*args, **kwargs)`` on a worker reserved for it for its whole run.

        For long, stateful work such as a pipe or a shard: on RayEngine it runs in its own Ray
        actor, created for it and killed when it ends; MultiProcessEngine already gives every
        task its own process. The contract is :meth:`submit`'s: it starts a stopped engine, the
        future resolves the same way (a dead worker is :class:`WorkerLost`), :meth:`cancel`
        stops it, and :func:`report_progress` inside ``fn`` reaches :meth:`progress`.

        Example:
            >>> from zoopipe_core.engines import MultiProcessEngine
            >>> with MultiProcessEngine(max_workers=1) as engine:
            ...     engine.submit_dedicated(sum, [1, 2, 3]).result()
            6
        """
        return self._submit_tracked("submit_dedicated", self._submit_dedicated, fn, args, kwargs)

    def _submit_tracked(
        self,
        method: str,
        hook: Callable[[Callable[..., Any], tuple[Any, ...], dict[str, Any]], concurrent.futures.Future[Any]],
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> concurrent.futures.Future[Any]:
        """What submit and submit_dedicated share: checks, auto-start, outstanding tracking."""
        if not callable(fn):
            raise TypeError(f"{method}() needs a callable, got {type(fn).__name__} {fn!r}")
        with self._lifecycle:
            self._ensure_running("submit a task")
            future = hook(fn, args, kwargs)
            with self._outstanding_lock:
                self._outstanding.add(future)
        future.add_done_callback(self._forget_future)
        return future

    def cancel(self, future: concurrent.futures.Future[Any]) -> bool:
        """Cancel a submitted task, queued or running (a running one is stopped).

        Returns True when the future is cancelled (now or earlier), False when it had already
        finished with a result or an exception. Raises ValueError for a future this engine did
        not return. Cancelling the future itself (``future.cancel()``) may not stop a running
        task on every engine; this method does.
        """
        if future.done():
            return future.cancelled()
        with self._outstanding_lock:
            known = future in self._outstanding
        if not known:
            raise ValueError(
                f"cancel() got a future that {self!r} did not return; cancel it through the "
                "engine that submitted it"
            )
        return self._cancel(future)

    def share(self, obj: Any) -> SharedRef:
        """Share ``obj`` with workers once; returns a small :class:`SharedRef` to pass to tasks.

        Starts the engine if it is stopped. The object is serialised once, not per task; a task
        calls ``ref.get()`` to use it. It stays available until :meth:`shutdown`.
        """
        with self._lifecycle:
            self._ensure_running("share an object")
            return self._share(obj)

    def unshare(self, ref: SharedRef) -> None:
        """Free an object :meth:`share` stored, now rather than at :meth:`shutdown`.

        A task that calls ``ref.get()`` afterwards raises LookupError; workers keep what they
        already loaded. A ref this engine did not return, or one already freed, is ignored.

        Example:
            >>> from zoopipe_core.engines import MultiProcessEngine
            >>> with MultiProcessEngine(max_workers=1) as engine:
            ...     ref = engine.share(b"weights")
            ...     engine.unshare(ref)
            ...     type(engine.submit(lambda r: r.get(), ref).exception()).__name__
            'LookupError'
        """
        with self._lifecycle:
            if self.is_running:
                self._unshare(ref)

    def capacity(self) -> int:
        """How many tasks this engine can run at once right now (at least 1); starts a stopped
        engine, as :meth:`submit` does.

        A parallel map keeps a few times this many tasks in flight. MultiProcessEngine: its
        ``max_workers``; RayEngine: the cluster's CPUs divided by each task's ``num_cpus``;
        DaskEngine: its workers' threads. It changes as a cluster's workers come and go.

        Example:
            >>> from zoopipe_core.engines import MultiProcessEngine
            >>> with MultiProcessEngine(max_workers=3) as engine:
            ...     engine.capacity()
            3
        """
        with self._lifecycle:
            self._ensure_running("measure its capacity")
            return max(1, self._capacity())

    # ------------------------------------------------------------------ progress

    def progress(self) -> dict[str, dict[str, Any]]:
        """The latest payload per key that tasks sent with ``report_progress`` since start()."""
        with self._progress_lock:
            return {key: dict(payload) for key, payload in self._progress.items()}

    def on_progress(self, callback: ProgressCallback) -> Callable[[], None]:
        """Call ``callback(key, payload)`` for every payload that arrives; returns an
        unsubscribe function. Callbacks run on an engine thread: keep them short."""
        with self._progress_lock:
            self._progress_callbacks.append(callback)

        def unsubscribe() -> None:
            with self._progress_lock:
                if callback in self._progress_callbacks:
                    self._progress_callbacks.remove(callback)

        return unsubscribe

    def _record_progress(self, key: str, payload: dict[str, Any]) -> None:
        """For engine authors: store a payload that arrived from a worker and notify callbacks."""
        with self._progress_lock:
            self._progress[key] = payload
            callbacks = list(self._progress_callbacks)
        for callback in callbacks:
            try:
                callback(key, payload)
            except Exception:
                # A broken display must not stop results from arriving; it stays subscribed.
                _log.exception("progress callback %r failed on key %r", callback, key)

    def _offer_progress(self, token: str, sequence: int, key: str, payload: dict[str, Any]) -> None:
        """For engine authors: record a payload numbered by :class:`~zoopipe_core.engines.TaskProgress`
        (``sequence``) of the task ``token``, unless a later one of the same task was recorded
        already: for channels that may deliver late, or twice (the final payloads travel with
        the outcome too)."""
        with self._progress_lock:
            seen = self._progress_seen.get(key)
            if seen is not None and seen[0] == token and seen[1] >= sequence:
                return  # an older payload of the same task, arriving late
            self._progress_seen[key] = (token, sequence)
        self._record_progress(key, payload)

    def _record_final_progress(self, token: str, latest: dict[str, tuple[int, dict[str, Any]]]) -> None:
        """For engine authors: offer a task's last payloads (``Outcome.progress``) before its
        future resolves, so :meth:`progress` holds them once the future is done."""
        for key, (sequence, payload) in latest.items():
            self._offer_progress(token, sequence, key, payload)

    # ------------------------------------------------------------------ helpers

    def _ensure_running(self, action: str) -> None:
        if self._state == "stopping":
            raise RuntimeError(
                f"cannot {action}: {self!r} is shutting down; wait for shutdown() to return, "
                "then submit again (the engine restarts)"
            )
        if self._state == "stopped":
            self.start()

    def _pending_futures(self) -> list[concurrent.futures.Future[Any]]:
        with self._outstanding_lock:
            return [f for f in self._outstanding if not f.done()]

    def _forget_future(self, future: concurrent.futures.Future[Any]) -> None:
        with self._outstanding_lock:
            self._outstanding.discard(future)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._state}>"

    # ------------------------------------------------------------------ hooks for engine authors

    @abc.abstractmethod
    def _start(self) -> None:
        """Create or connect to the workers. Called by :meth:`start` on a stopped engine; raise
        (with what failed and what to do) to leave it stopped. No silent local fallback."""

    @abc.abstractmethod
    def _shutdown(self, timeout: float) -> None:
        """Stop everything this run started, as :meth:`shutdown` describes: cancel unfinished
        futures (``future.cancelled()`` is True afterwards), ask running tasks to stop, force them
        after ``timeout`` seconds, release shared objects. Return when the work has stopped."""

    @abc.abstractmethod
    def _prepare(self, environment: WorkerEnvironment) -> None:
        """Validate ``environment`` and apply it to later tasks (install, upload, record).
        Raise at once for a problem the user must fix. May run before :meth:`_start`."""

    @abc.abstractmethod
    def _submit(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> concurrent.futures.Future[Any]:
        """Queue ``fn(*args, **kwargs)`` and return its future, resolved as :meth:`submit`
        describes. Run the task inside :func:`progress_channel`. Never retry a task whose worker
        was lost: fail its future with :class:`WorkerLost`. Called with the engine running."""

    def _submit_dedicated(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> concurrent.futures.Future[Any]:
        """Like :meth:`_submit`, on a worker reserved for ``fn`` until it ends (see
        :meth:`submit_dedicated`). The default is :meth:`_submit`, right for engines whose
        tasks already each own their worker; override it where tasks share workers."""
        return self._submit(fn, args, kwargs)

    @abc.abstractmethod
    def _cancel(self, future: concurrent.futures.Future[Any]) -> bool:
        """Cancel the task of ``future`` (not yet done): drop it if queued, stop it if running;
        afterwards ``future.cancelled()`` is True. Return True when cancelled."""

    @abc.abstractmethod
    def _capacity(self) -> int:
        """How many tasks can run at once now (see :meth:`capacity`). Called with the engine
        running."""

    @abc.abstractmethod
    def _share(self, obj: Any) -> SharedRef:
        """Store ``obj`` once where workers can load it; return its :class:`SharedRef`.
        Called with the engine running; release the object in :meth:`_shutdown`."""

    def _unshare(self, ref: SharedRef) -> None:  # noqa: B027 - optional hook, not abstract
        """Free one shared object early (see :meth:`unshare`); called with the engine running.
        An engine without this keeps the object until shutdown."""
