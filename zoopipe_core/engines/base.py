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
import contextlib
import contextvars
import dataclasses
import logging
import os
import pickle
import signal
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from zoopipe_core.engines.main_guard import refuse_start_while_importing_main
from zoopipe_core.errors import ZoopipeError
from zoopipe_core.running import RunningSet

_log = logging.getLogger(__name__)

ProgressCallback = Callable[[str, dict[str, Any]], None]


# --------------------------------------------------------------------------- errors


def exception_type_name(exc: BaseException) -> str:
    """``ValueError`` for built-in exceptions, ``package.module.Class`` for the others."""
    cls = type(exc)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


class RemoteError(ZoopipeError):
    """A task failed on a worker: the original exception's type name, message and traceback.

    When the original exception can be rebuilt on the driver, engines raise *it* (same type,
    same message) with a RemoteError as its ``__cause__``, so the worker's traceback prints
    above it ("The above exception was the direct cause..."). When it cannot (its class is not
    importable on the driver, it does not pickle, or it is not an ``Exception`` such as
    ``KeyboardInterrupt``), engines raise the RemoteError itself. :meth:`of` finds it either way.

    Example:
        >>> text = "Traceback ...\\nValueError: bad row 7\\n"
        >>> remote = RemoteError("ValueError", "bad row 7", text)
        >>> remote.exc_type, remote.message
        ('ValueError', 'bad row 7')
        >>> original = ValueError("bad row 7")
        >>> original.__cause__ = remote
        >>> RemoteError.of(original) is remote
        True
        >>> print(str(remote).splitlines()[0])
        ValueError: bad row 7
    """

    def __init__(
        self, exc_type: str, message: str, remote_traceback: str = "", worker: str = ""
    ) -> None:
        super().__init__(f"{exc_type}: {message}")
        self.exc_type = exc_type
        self.message = message
        self.remote_traceback = remote_traceback
        self.worker = worker  # where it ran, e.g. "pid 4242"; "" when unknown

    @classmethod
    def from_exception(cls, exc: BaseException, worker: str = "") -> RemoteError:
        """Describe ``exc``, caught in a worker, for the trip to the driver."""
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return cls(exception_type_name(exc), str(exc), text, worker)

    @staticmethod
    def of(exc: BaseException) -> RemoteError | None:
        """The RemoteError describing ``exc``: itself, its ``__cause__``, or None if not remote."""
        if isinstance(exc, RemoteError):
            return exc
        if isinstance(exc.__cause__, RemoteError):
            return exc.__cause__
        return None

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.exc_type, self.message, self.remote_traceback, self.worker))

    def __str__(self) -> str:
        text = f"{self.exc_type}: {self.message}"
        if self.remote_traceback:
            where = f" (worker {self.worker})" if self.worker else ""
            text += f"\n\nRemote traceback{where}:\n{self.remote_traceback.rstrip()}"
        return text


def rebuild_failure(remote: RemoteError, original: bytes | None) -> BaseException:
    """What a failed task raises in the driver: the original exception (unpickled from
    ``original``) with ``remote`` as its cause, or ``remote`` itself when the original cannot be
    rebuilt here (its class is not importable in the driver, say). Shared by every engine."""
    if original is not None:
        try:
            exc = pickle.loads(original)
        except Exception:  # noqa: BLE001 - any failure to rebuild falls back to RemoteError
            exc = None
        if isinstance(exc, Exception):
            exc.__cause__ = remote
            return exc
    return remote


def callable_name(fn: Callable[..., Any]) -> str:
    """A task's name in logs and dashboards: the callable's qualified name."""
    return getattr(fn, "__qualname__", None) or type(fn).__name__


def signal_name(exitcode: int | None) -> str | None:
    """The name of the signal that ended a process with this exit code (negative), or None."""
    if exitcode is None or exitcode >= 0:
        return None
    try:
        return signal.Signals(-exitcode).name
    except ValueError:
        return f"signal {-exitcode}"


def prime_worker() -> int:
    """Load zoopipe's executor (its native module) in this worker process; return its pid.

    Cluster engines run it on their workers when they start, so the first pipe on a worker
    does not pay for the import, and a worker that cannot import zoopipe_core fails ``start``
    with that error instead of the first task.

    Example:
        >>> import os
        >>> prime_worker() == os.getpid()
        True
    """
    import zoopipe_core.pipe.runner  # noqa: F401  (loads zoopipe_core._native)

    return os.getpid()


def worker_import_error(engine: str, exc: BaseException) -> RuntimeError:
    """The error ``start`` raises when a worker could not run :func:`prime_worker`."""
    return RuntimeError(
        f"{engine} could not load zoopipe_core in a worker: {type(exc).__name__}: {exc}. "
        "Install zoopipe-core (the same version as here) where the workers run, or ship it "
        "with engine.prepare(WorkerEnvironment(requirements=[...]))"
    )


class WorkerLost(RemoteError):
    """The worker running a task died before returning a result (SIGKILL, ``os._exit``, a crash).

    Only that task's future fails with it; other tasks go on. ``pid`` and ``exitcode`` are set
    when the engine knows them; a negative ``exitcode`` is the number of the killing signal.

    Example:
        >>> lost = WorkerLost("worker process 4242 running 'load' was killed by SIGKILL", 4242, -9)
        >>> lost.pid, lost.signal_name, isinstance(lost, RemoteError)
        (4242, 'SIGKILL', True)
    """

    def __init__(
        self, message: str, pid: int | None = None, exitcode: int | None = None, worker: str = ""
    ) -> None:
        super().__init__("WorkerLost", message, "", worker or (f"pid {pid}" if pid else ""))
        self.args = (message,)
        self.pid = pid
        self.exitcode = exitcode

    @property
    def signal_name(self) -> str | None:
        """``"SIGKILL"`` when a signal ended the worker, else None."""
        return signal_name(self.exitcode)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.pid, self.exitcode, self.worker))

    def __str__(self) -> str:
        return self.message


# --------------------------------------------------------------------------- environment


@dataclasses.dataclass(frozen=True)
class WorkerEnvironment:
    """What workers need besides the task: dependencies, code, ignore rules, environment variables.

    - ``requirements``: requirement lines (``"pandas==2.2.3"``) workers must have installed.
    - ``installer``: the registered installer that installs them (``"uv"``); None lets the
      ``zoopipe_select_installer`` hook choose.
    - ``code_paths``: local code workers import. A directory is put on the workers' import
      path (like Ray's ``working_dir``); a package directory (with ``__init__.py``) or a ``.py``
      module is importable by its name (like Ray's ``py_modules``).
    - ``ignore_file``: the file of ignore patterns for uploads (``.rayignore``).
    - ``env_vars``: environment variables set in workers before a task runs.

    Example:
        >>> env = WorkerEnvironment(requirements=["attrs==24.2.0"], env_vars={"MODE": "fast"})
        >>> env.ignore_file, env.code_paths
        ('.rayignore', [])
        >>> WorkerEnvironment(env_vars={"THREADS": 4})
        Traceback (most recent call last):
        ...
        TypeError: env_vars['THREADS'] must be a string, got int 4; pass str(4)
    """

    requirements: list[str] = dataclasses.field(default_factory=list)
    installer: str | None = None
    code_paths: list[str] = dataclasses.field(default_factory=list)
    ignore_file: str | None = ".rayignore"
    env_vars: dict[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        for requirement in self.requirements:
            if not isinstance(requirement, str):
                raise TypeError(
                    f"requirements must be strings like 'pandas==2.2.3', got "
                    f"{type(requirement).__name__} {requirement!r}"
                )
        # Paths may be given as pathlib.Path; store them as str so the value pickles anywhere.
        object.__setattr__(self, "code_paths", [os.fspath(p) for p in self.code_paths])
        for key, value in self.env_vars.items():
            if not isinstance(key, str) or not key or "=" in key:
                raise ValueError(
                    f"env_vars has an invalid variable name {key!r}; use a non-empty string "
                    "without '='"
                )
            if not isinstance(value, str):
                raise TypeError(
                    f"env_vars[{key!r}] must be a string, got {type(value).__name__} {value!r}; "
                    f"pass str({value!r})"
                )

    def resolved_code_paths(self) -> list[Path]:
        """The code paths as absolute paths; FileNotFoundError names every one that is missing."""
        paths = [Path(p).expanduser().resolve() for p in self.code_paths]
        missing = [str(original) for original, p in zip(self.code_paths, paths) if not p.exists()]
        if missing:
            raise FileNotFoundError(
                f"code path(s) {', '.join(repr(m) for m in missing)} do not exist (relative paths "
                f"are taken from {os.getcwd()!r}); pass existing directories, packages or .py "
                "files in WorkerEnvironment.code_paths"
            )
        return paths

    def ignore_patterns(self) -> list[str]:
        """The patterns of ``ignore_file`` (``.rayignore`` syntax: one per line, ``#`` comments),
        or none when there is no such file. Engines match them with git's rules
        (:class:`zoopipe_core.installers.IgnoreRules`)."""
        from zoopipe_core.installers import read_ignore_file

        return read_ignore_file(self.ignore_file)

    def import_paths(self) -> list[str]:
        """The directories to put at the front of a worker's ``sys.path`` for ``code_paths``."""
        roots = []
        for path in self.resolved_code_paths():
            is_package = path.is_dir() and (path / "__init__.py").is_file()
            root = path.parent if is_package or path.is_file() else path
            roots.append(str(root))
        return list(dict.fromkeys(roots))


# --------------------------------------------------------------------------- shared objects


class SharedRef(abc.ABC):
    """A handle to one large object an engine shared with its workers (see :meth:`Engine.share`).

    The handle is small to pickle: pass it to ``submit`` in place of the object, and call
    :meth:`get` in the task. Engines implement it over their object store.

    Example:
        >>> from zoopipe_core.engines import MultiProcessEngine
        >>> with MultiProcessEngine(max_workers=1) as engine:
        ...     ref = engine.share({"vocabulary": ["a", "b"]})
        ...     engine.submit(lambda r: r.get()["vocabulary"][1], ref).result()
        'b'
    """

    @property
    @abc.abstractmethod
    def key(self) -> str:
        """Identifies the shared copy: two refs with the same key resolve to the same copy."""

    @abc.abstractmethod
    def get(self) -> Any:
        """The shared object.

        The first call in a process loads it; later calls in the same process return the same
        object. Raises LookupError when the engine that shared it has been shut down.
        """


# --------------------------------------------------------------------------- progress


# The channel of the task running in this context; the process-wide one covers threads that
# the task starts, which begin with an empty context.
_task_channel: contextvars.ContextVar[ProgressCallback | None] = contextvars.ContextVar(
    "zoopipe_progress_channel", default=None
)
_process_channel: ProgressCallback | None = None


def report_progress(key: str, payload: dict[str, Any]) -> bool:
    """Send a small dict to the driver while a task runs; the driver keeps the latest per key.

    Call it from inside a task, a few times per second at most. The driver sees it through
    :meth:`Engine.progress` and :meth:`Engine.on_progress`. Returns True when sent, False when
    no engine task is running here (the function was called directly): nothing to report to.

    Example:
        >>> report_progress("shard-0", {"rows": 1000})
        False
    """
    if not isinstance(key, str):
        raise TypeError(f"report_progress() key must be a str, got {type(key).__name__} {key!r}")
    if not isinstance(payload, dict):
        raise TypeError(
            f"report_progress() payload must be a dict, got {type(payload).__name__}; "
            'wrap the value: {"value": ...}'
        )
    send = _task_channel.get() or _process_channel
    if send is None:
        return False
    send(key, payload)
    return True


@contextlib.contextmanager
def progress_channel(send: ProgressCallback) -> Iterator[None]:
    """For engine authors: route :func:`report_progress` to ``send`` while a task runs.

    Wrap the task call in the worker with it; ``send(key, payload)`` carries the payload to the
    driver, where the engine hands it to :meth:`Engine._record_progress`.

    Example:
        >>> sent = []
        >>> with progress_channel(lambda key, payload: sent.append((key, payload))):
        ...     report_progress("shard-0", {"rows": 1000})
        True
        >>> sent
        [('shard-0', {'rows': 1000})]
    """
    global _process_channel
    token = _task_channel.set(send)
    previous, _process_channel = _process_channel, send
    try:
        yield
    finally:
        _task_channel.reset(token)
        _process_channel = previous


# --------------------------------------------------------------------------- the engine


def _pipes_to_start_message(engine: "Engine", args: tuple[Any, ...]) -> str:
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
        except Exception:  # noqa: BLE001 - the others must still be shut down
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
    and implement the ``_start``, ``_shutdown``, ``_prepare``, ``_submit``, ``_cancel`` and
    ``_share`` hooks (and ``_submit_dedicated`` when tasks share workers). Hand progress from
    workers to :meth:`_record_progress`.

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

    def __init__(self) -> None:
        self._lifecycle = threading.RLock()
        self._state: _State = "stopped"
        self._environment = WorkerEnvironment()
        self._progress_lock = threading.Lock()
        self._progress: dict[str, dict[str, Any]] = {}
        self._progress_callbacks: list[ProgressCallback] = []
        self._outstanding_lock = threading.Lock()
        self._outstanding: set[concurrent.futures.Future[Any]] = set()

    # ------------------------------------------------------------------ lifecycle

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
            self._start()
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

    def submit(
        self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[Any]:
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
        hook: Callable[
            [Callable[..., Any], tuple[Any, ...], dict[str, Any]], concurrent.futures.Future[Any]
        ],
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
    def _share(self, obj: Any) -> SharedRef:
        """Store ``obj`` once where workers can load it; return its :class:`SharedRef`.
        Called with the engine running; release the object in :meth:`_shutdown`."""
