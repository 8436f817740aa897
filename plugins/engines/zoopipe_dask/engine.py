"""DaskEngine: runs zoopipe tasks on a Dask cluster, local or remote (registered as ``"dask"``).

How it works:

- Each ``submit`` is one ``client.submit(..., pure=False, retries=0)``. Dask reschedules the
  tasks of a worker that died (up to ``distributed.scheduler.allowed-failures`` times); this
  engine never lets that re-run the user's function. A cluster it creates has
  ``allowed-failures`` 0, and on any other cluster the task wrapper asks the scheduler whether
  a worker already died running this task, and if so fails it with WorkerLost unrun.
- Progress travels as Dask structured events (``Worker.log_event``) on a topic of this engine,
  which the driver's client subscribes to; each task also returns its last payload per key.
- Stopping a running task raises StopRequested in its worker thread (its ``finally`` blocks
  run); after the grace period its worker process is killed and its nanny starts a new one.
- ``share`` is ``client.scatter(broadcast=True)``; ``DaskRef.get()`` reads the worker's copy.
  Scattered data has no recipe: when the last worker holding it dies, Dask forgets it and
  cancels every task that needs it. The engine keeps the object on the driver, scatters it
  again under the same key before submitting a task that needs it, and submits again (a few
  times) a task Dask cancelled for that loss, which never ran; a task that was running on the
  dead worker still fails with WorkerLost.
- ``environment`` (by default the project the engine starts in) is narrowed at start to what
  the workers lack (``gather_facts`` on every worker, ``plan_environment``), then applied by a
  worker plugin, for present and later workers: requirements installed once per host
  (``install_once``), ``code_paths`` as zip archives put on ``sys.path``, ``env_vars``. While
  requirements are installed, tasks require the environment's resource tag, which only a
  worker whose install succeeded declares.

Dask is imported when the engine starts, never when this module is imported.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import os
import pickle
import queue
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from zoopipe_core.engines import (
    FROM_PROJECT,
    Engine,
    RemoteError,
    SharedRef,
    WorkerEnvironment,
    WorkerLost,
    callable_name,
    check_builds,
    check_environment_choice,
    check_reachable,
    code_checks,
    gather_facts,
    host_build,
    host_port,
    is_empty,
    plan_environment,
    prime_worker,
    refuse_unguarded_main,
    settle_future,
    startup_environment,
    worker_import_error,
    worker_preloads,
)
from zoopipe_dask._worker import (
    STARTED_ATTRIBUTE,
    TOPIC_PREFIX,
    DaskRef,
    RefusedRerun,
    run_task,
    running_tokens,
    stop_task,
)
from zoopipe_dask.environment import code_archives, environment_tag

__all__ = ["DaskEngine", "code_archives", "environment_tag"]

_log = logging.getLogger(__name__)

_MISSING_DASK = 'Dask is not installed; install it with: pip install "zoopipe-core[dask]"'


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(_MISSING_DASK) from exc
    return distributed


# --------------------------------------------------------------------------- addresses


def _check_reachable(address: str, timeout: float) -> None:
    if host_port(address) is None:
        raise ValueError(
            f"DaskEngine address {address!r} is not 'tcp://host:port'; pass the scheduler's "
            "address (e.g. 'tcp://10.0.0.5:8786'), a distributed.Client, or None for a "
            "LocalCluster"
        )
    check_reachable(
        "DaskEngine",
        "a Dask scheduler",
        address,
        timeout,
        "Check that the scheduler is running and that this machine can reach that host and port; "
        "pass address=None to start a LocalCluster instead",
    )


# --------------------------------------------------------------------------- the engine


#: How many times a task Dask cancelled because a shared object it needs was lost is submitted
#: in all before it fails (the object is scattered again each time; it never ran).
SHARED_LOSS_ATTEMPTS = 3

#: How long scattering a lost shared object again waits for a worker (seconds): when the last
#: worker holding it died, the others may be restarting too.
RESCATTER_TIMEOUT = 120.0

#: The reasons Dask gives when it cancels a task because its scattered dependency is gone:
#: forgotten while the task waited, or already gone when the task reached the scheduler.
_LOST_DEPENDENCY_REASONS = frozenset({"already forgotten", "lost dependencies"})


@dataclasses.dataclass(eq=False)
class _DaskTask:
    future: concurrent.futures.Future[Any]
    name: str
    token: str
    call: tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]
    shared_keys: list[str]
    dask_future: Any = None
    attempt: int = 0
    killed: bool = False


@dataclasses.dataclass(eq=False)
class _Shared:
    """An object shared by the engine: its ref, its scattered future, and the object itself,
    kept on the driver to scatter again when the cluster loses it."""

    ref: DaskRef
    dask_future: Any
    obj: Any


class DaskEngine(Engine):
    """Runs each submitted callable as a Dask task, on a LocalCluster or a cluster (``"dask"``).

    - ``address``: None joins the current default ``distributed.Client`` when there is one
      (the one ``dask.compute`` would use; never closed by the engine), else starts a
      ``LocalCluster`` of worker processes (``n_workers``, default the number of CPUs, one
      thread each) closed at shutdown; giving ``n_workers`` or ``cluster_kwargs`` always
      starts a LocalCluster. A string connects to that scheduler (ConnectionError after
      ``connect_timeout`` seconds if unreachable, never a local run); a ``distributed.Client``
      is used as given and never closed by the engine.
    - ``cluster_kwargs``: passed to ``LocalCluster`` when ``address`` is None.
    - ``environment``: what workers get at ``start``. ``"project"`` (the default): the project
      the engine is started in (``WorkerEnvironment.from_project``), narrowed to what the
      workers lack: on a LocalCluster, which shares this interpreter, nothing is installed. A
      WorkerEnvironment replaces it; None prepares nothing (workers are provisioned already).
      Requirements are installed once per host into a cache that later starts reuse.

    A LocalCluster's worker processes import the main script again, so a script that starts
    one outside ``if __name__ == "__main__":`` gets UnguardedMainError at once.

    Example:
        >>> from zoopipe_dask import DaskEngine
        >>> with DaskEngine(n_workers=2) as engine:
        ...     futures = [engine.submit(pow, 2, n) for n in range(4)]
        ...     [f.result() for f in futures]
        [1, 2, 4, 8]
    """

    name = "dask"

    def __init__(
        self,
        address: Any = None,
        *,
        n_workers: int | None = None,
        connect_timeout: float = 10.0,
        environment: WorkerEnvironment | str | None = FROM_PROJECT,
        **cluster_kwargs: Any,
    ) -> None:
        super().__init__()
        check_environment_choice(environment, "DaskEngine")
        self.environment_choice = environment
        self._user_prepared = False  # prepare() before start replaces environment_choice
        self._resource_tag = ""  # tasks require it while an install runs on the workers
        if address is not None and not isinstance(address, str) and not hasattr(address, "submit"):
            raise TypeError(
                f"DaskEngine address must be None, a scheduler address string or a "
                f"distributed.Client, got {type(address).__name__}"
            )
        if n_workers is not None and n_workers < 1:
            raise ValueError(f"n_workers must be >= 1, got {n_workers!r}")
        self.address = address
        self.n_workers = n_workers
        self.connect_timeout = connect_timeout
        self.cluster_kwargs = cluster_kwargs
        self._client: Any = None
        self._cluster: Any = None
        self._owns_client = False
        self._guard_reruns = True
        self._topic = ""
        self._plugin_names: list[str] = []
        self._tasks: dict[concurrent.futures.Future[Any], _DaskTask] = {}
        self._tasks_lock = threading.Lock()
        self._shared: dict[str, _Shared] = {}
        self._shared_lock = threading.Lock()
        self._watchdog: threading.Thread | None = None
        self._stopping = threading.Event()
        self._kill_at: dict[str, tuple[float, _DaskTask]] = {}
        self._events: queue.Queue[dict[str, Any]] = queue.Queue()

    def __repr__(self) -> str:
        if isinstance(self.address, str):
            where = self.address
        elif self.address is None and (self._cluster is not None or not self.is_running):
            where = "LocalCluster"
        else:
            where = "client"
        return f"<DaskEngine {where} {self._state}>"

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` of the running engine (None when stopped)."""
        return self._client

    # ------------------------------------------------------------------ lifecycle

    def _start(self) -> None:
        distributed = _import_distributed()
        import dask

        spec = self.environment if self._user_prepared else startup_environment(self.environment_choice)

        current = self._current_client(distributed) if self._may_join_current() else None
        if current is not None:
            # As dask.compute does: the user's default Client, left open at shutdown.
            self._client = current
            self._owns_client = False
        elif self.address is None:
            self._refuse_unguarded_main(dask)
            # No silent re-runs on a cluster we create: a lost worker's task fails at once.
            with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
                options = {
                    "n_workers": self.n_workers or os.cpu_count() or 2,
                    "threads_per_worker": 1,
                    "processes": True,
                    "dashboard_address": ":0",  # a free port, never a clash on 8787
                    **self.cluster_kwargs,
                }
                self._cluster = distributed.LocalCluster(**options)
            self._client = distributed.Client(self._cluster, set_as_default=False)
            self._owns_client = True
        elif isinstance(self.address, str):
            _check_reachable(self.address, self.connect_timeout)
            try:
                self._client = distributed.Client(
                    self.address, timeout=self.connect_timeout, set_as_default=False
                )
            except OSError as exc:
                raise ConnectionError(
                    f"DaskEngine could not connect to the Dask scheduler at {self.address!r}: "
                    f"{exc}. Check the address and that the scheduler is running"
                ) from exc
            self._owns_client = True
        else:
            self._client = self.address
            self._owns_client = False
        self._events = queue.Queue()
        try:
            self._guard_reruns = self._scheduler_may_rerun()
            self._topic = f"{TOPIC_PREFIX}{uuid.uuid4().hex}"
            self._client.subscribe_topic(self._topic, self._on_event)
            self._plugin_names = []
            if spec is not None:
                self._environment = self._plan(spec)
            self._apply_environment(self.environment)
            self._prime_workers()
            if spec is not None and not is_empty(self.environment):
                check_builds("DaskEngine", list(self._client.run(host_build).values()))
        except BaseException:
            self._close_client()
            raise
        self._stopping.clear()
        self._kill_at = {}
        self._watchdog = threading.Thread(
            target=self._watch_cancelled, name="zoopipe-dask-engine", daemon=True
        )
        self._watchdog.start()

    def _may_join_current(self) -> bool:
        """``DaskEngine()`` (no address, no LocalCluster options) joins the current Client."""
        return self.address is None and self.n_workers is None and not self.cluster_kwargs

    @staticmethod
    def _current_client(distributed: Any) -> Any:
        """The Client ``dask.compute`` would use here (the current or default one), or None."""
        try:
            client = distributed.Client.current(allow_global=True)
        except ValueError:  # no Client in this process
            return None
        if client.status != "running" or client.asynchronous:
            return None
        return client

    def _refuse_unguarded_main(self, dask: Any) -> None:
        """LocalCluster's worker processes import the main script again: refuse to start one
        from an unguarded script before that fails with "Nanny failed to start"."""
        if not self.cluster_kwargs.get("processes", True):
            return
        method = dask.config.get("distributed.worker.multiprocessing-method", "spawn")
        refuse_unguarded_main(
            "DaskEngine",
            method,
            'connect to a running scheduler instead: DaskEngine(address="tcp://host:8786") '
            "(`dask scheduler` and `dask worker tcp://host:8786` start one)",
        )

    def _prime_workers(self) -> None:
        """Load zoopipe's executor in every worker now, so the first pipes do not wait for it
        (workers that join later load it with their first task)."""
        try:
            self._client.run(prime_worker, worker_preloads())
        except Exception as exc:
            raise worker_import_error("DaskEngine", exc) from exc

    def _shutdown(self, timeout: float) -> None:
        with self._tasks_lock:
            tasks = list(self._tasks.values())
        for task in tasks:
            task.future.cancel()  # its done callback cancels the Dask future and stops it
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._running_somewhere(tasks):
            time.sleep(0.05)
        stuck = self._running_somewhere(tasks)
        for task in stuck:
            self._stop(task, force=True)
        self._stopping.set()
        if self._watchdog is not None:
            self._watchdog.join(timeout=5.0)
            self._watchdog = None
        with self._tasks_lock:
            self._tasks.clear()
        with self._shared_lock:
            shared, self._shared = self._shared, {}
        for entry in shared.values():
            entry.ref.release()
            entry.dask_future.release()
        try:
            self._client.unsubscribe_topic(self._topic)
            for name in self._plugin_names:
                self._client.unregister_worker_plugin(name)
        except Exception as exc:  # the cluster may be gone already
            _log.debug("DaskEngine cleanup on the cluster failed: %s", exc)
        self._close_client()

    def _scheduler_may_rerun(self) -> bool:
        """Whether the scheduler re-runs the tasks of a dead worker (allowed-failures > 0)."""

        def allowed_failures(dask_scheduler: Any = None) -> int:
            return dask_scheduler.allowed_failures

        try:
            return self._client.run_on_scheduler(allowed_failures) != 0
        except Exception:  # an old or locked-down scheduler: guard every task
            return True

    def _close_client(self) -> None:
        client, cluster = self._client, self._cluster
        self._client = self._cluster = None
        if self._owns_client and client is not None:
            client.close()
        if cluster is not None:
            cluster.close()

    # ------------------------------------------------------------------ environment

    def _prepare(self, environment: WorkerEnvironment) -> None:
        environment.resolved_code_paths()  # FileNotFoundError at once
        if self._client is not None:
            self._apply_environment(environment)
        else:
            self._user_prepared = True  # start() narrows this one instead of environment_choice

    def _plan(self, spec: WorkerEnvironment) -> WorkerEnvironment:
        """What of ``spec`` the workers lack, from ``gather_facts`` on each of them."""
        try:
            facts = self._client.run(
                gather_facts, spec.requirements, code_checks(spec), spec.ignore_patterns()
            )
        except ModuleNotFoundError as exc:
            raise worker_import_error("DaskEngine", exc) from exc
        return plan_environment(spec, list(facts.values()), "DaskEngine", _log)

    def _apply_environment(self, environment: WorkerEnvironment) -> None:
        """Register the plugin that gives every worker ``environment`` (replacing this engine's
        earlier one); with requirements, tasks then require its tag and a start on which no
        worker could install them fails with the installer's message."""
        from zoopipe_dask._plugin import EnvironmentPlugin

        archives = code_archives(environment)
        requirements = environment.requirements if environment.installer != "manual" else []
        tag = environment_tag(environment) if requirements else ""
        name = f"zoopipe-environment-{id(self):x}"
        if archives or environment.env_vars or requirements:
            plugin = EnvironmentPlugin(
                archives, environment.env_vars, requirements, environment.installer or "pip", tag, self._topic
            )
            self._client.register_plugin(plugin, name=name)
            if name not in self._plugin_names:
                self._plugin_names.append(name)
        elif name in self._plugin_names:
            self._client.unregister_worker_plugin(name)
            self._plugin_names.remove(name)
        self._resource_tag = tag
        if requirements:
            self._check_installs(name)

    def _check_installs(self, name: str) -> None:
        """RuntimeError with the installer's message when no worker could install the
        requirements; a warning naming the workers that could not, when some could."""
        from zoopipe_dask._plugin import environment_failure

        failures = self._client.run(environment_failure, name)
        failed = {worker: said for worker, said in failures.items() if said is not None}
        if failed and len(failed) == len(failures):
            said = next(iter(failed.values()))
            raise RuntimeError(
                f"DaskEngine could not prepare its workers' environment: {said}\nFix the requirement "
                "(`zoopipe env` lists them), or start with environment=None if the workers are "
                "provisioned already"
            )
        for worker, said in failed.items():
            _log.warning(
                "DaskEngine: worker %s could not install the requirements, so it gets no work: %s",
                worker,
                said,
            )

    # ------------------------------------------------------------------ tasks

    def _submit(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        task = _DaskTask(
            future, callable_name(fn), uuid.uuid4().hex, (fn, args, kwargs), self._shared_keys(args, kwargs)
        )
        with self._tasks_lock:
            self._tasks[future] = task
        try:
            self._launch(task)
        except BaseException:
            with self._tasks_lock:
                self._tasks.pop(future, None)
            raise
        future.add_done_callback(lambda f: self._on_cancelled(task) if f.cancelled() else None)
        return future

    def _launch(self, task: _DaskTask) -> None:
        """Submit ``task`` to Dask: again (under a new key, the same token) when Dask cancelled
        it because a shared object it needs was lost."""
        task.attempt += 1
        fn, args, kwargs = task.call
        suffix = "" if task.attempt == 1 else f"-{task.attempt}"
        dask_future = self._client.submit(
            run_task,
            fn,
            args,
            kwargs,
            self._topic,
            task.token,
            self._guard_reruns,
            self._shared_futures(task.shared_keys),
            key=f"zoopipe-{task.name}-{task.token}{suffix}",
            pure=False,
            retries=0,
            resources={self._resource_tag: 1} if self._resource_tag else None,
        )
        task.dask_future = dask_future
        if task.future.cancelled():  # cancelled while being submitted again
            dask_future.cancel()
        dask_future.add_done_callback(lambda done: self._resolve(task, done))

    def _shared_keys(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[str]:
        """The keys of this engine's DaskRefs among the arguments (and one level inside lists,
        tuples and dicts)."""
        values = [*args, *kwargs.values()]
        for value in list(values):
            if isinstance(value, (list, tuple)):
                values.extend(value)
            elif isinstance(value, dict):
                values.extend(value.values())
        keys = {value.key for value in values if isinstance(value, DaskRef)}
        with self._shared_lock:
            return sorted(key for key in keys if key in self._shared)

    def _shared_futures(self, keys: list[str]) -> list[Any]:
        """The scattered futures of ``keys``, each scattered again first if the cluster lost it.

        As dependencies, Dask copies their data to the worker before the task starts, so
        ``ref.get()`` finds it in the worker's memory. Scattered data has no recipe: when the
        last worker holding it dies, the scheduler forgets the key and the client marks it
        cancelled; the object kept here goes back under the same key, which the DaskRefs
        already shipped inside arguments name.
        """
        futures = []
        with self._shared_lock:
            for key in keys:
                entry = self._shared.get(key)
                if entry is None:  # released by shutdown meanwhile
                    continue
                if entry.dask_future.status != "finished":
                    _log.info("DaskEngine: the cluster lost shared object %s; scattering it again", key)
                    # The old future stays referenced until the new one holds the key, so the
                    # client never releases the key in between.
                    entry.dask_future = self._scatter_again(key, entry.obj)
                futures.append(entry.dask_future)
        return futures

    def _scatter_again(self, key: str, obj: Any) -> Any:
        """Scatter ``obj`` under ``key`` to every running worker, waiting up to RESCATTER_TIMEOUT
        for one: all may be restarting. Right after they restart, the scheduler may place the
        data on a worker it does not count as running yet, and its broadcast then refuses
        ("Can not use replicate to delete data"): that moment passes, so it is tried again."""
        deadline = time.monotonic() + RESCATTER_TIMEOUT
        while True:
            try:
                [future] = self._client.scatter(
                    {key: obj}, broadcast=True, hash=False, timeout=RESCATTER_TIMEOUT
                ).values()
                return future
            except ValueError as exc:
                if "replicate" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.1)

    def _cancel(self, future: concurrent.futures.Future[Any]) -> bool:
        future.cancel()
        return future.cancelled()

    def _on_cancelled(self, task: _DaskTask) -> None:
        with self._tasks_lock:
            self._tasks.pop(task.future, None)
            self._kill_at[task.token] = (time.monotonic() + self.cancel_grace, task)
        self._stop(task, force=False)
        task.dask_future.cancel()

    def _stop(self, task: _DaskTask, force: bool) -> None:
        if force:
            task.killed = True
        try:
            # The worker running it raises StopRequested in it, or (force) exits.
            found = self._client.run(stop_task, task.token, force)
        except Exception as exc:
            _log.debug("stopping %s failed: %s", task.name, exc)
            return
        if force:
            self._wait_until_gone([address for address, here in found.items() if here])

    def _wait_until_gone(self, addresses: list[str], timeout: float = 5.0) -> None:
        """Wait until the scheduler has dropped the killed workers, so it stops giving them
        tasks (their nannies start fresh workers at new addresses)."""

        def worker_addresses(dask_scheduler: Any = None) -> list[str]:
            return list(dask_scheduler.workers)

        deadline = time.monotonic() + timeout
        while addresses and time.monotonic() < deadline:
            try:
                if not set(addresses) & set(self._client.run_on_scheduler(worker_addresses)):
                    return
            except Exception:
                return
            time.sleep(0.05)

    def _running_somewhere(self, tasks: list[_DaskTask]) -> list[_DaskTask]:
        """Those of ``tasks`` still running on a worker."""
        tokens = [task.token for task in tasks]
        if not tokens:
            return []
        try:
            found = self._client.run(running_tokens, tokens)
        except Exception:
            return []
        alive = {token for tokens_here in found.values() for token in tokens_here}
        return [task for task in tasks if task.token in alive]

    def _watch_cancelled(self) -> None:
        """The engine thread: delivers progress events, and kills the workers of cancelled
        tasks that ignored StopRequested for ``cancel_grace`` seconds."""
        while not self._stopping.is_set():
            try:
                message = self._events.get(timeout=0.25)
            except queue.Empty:
                message = None
            if message is not None:
                self._deliver_event(message)
            now = time.monotonic()
            with self._tasks_lock:
                due = [(token, task) for token, (at, task) in self._kill_at.items() if at <= now]
                for token, _ in due:
                    del self._kill_at[token]
            for _, task in due:
                if self._running_somewhere([task]):
                    self._stop(task, force=True)

    def _capacity(self) -> int:
        return sum(self._client.nthreads().values())

    def _share(self, obj: Any) -> SharedRef:
        # In a one-item list: scatter() would split a list, tuple or dict into many items.
        [dask_future] = self._client.scatter([obj], broadcast=True, hash=False)
        ref = DaskRef(dask_future.key)
        with self._shared_lock:
            self._shared[ref.key] = _Shared(ref, dask_future, obj)
        return ref

    def _unshare(self, ref: SharedRef) -> None:
        with self._shared_lock:
            entry = self._shared.pop(ref.key, None)
        if entry is not None:
            entry.ref.release()
            self._client.cancel([entry.dask_future], force=True)

    # ------------------------------------------------------------------ results and progress

    def _resolve(self, task: _DaskTask, dask_future: Any) -> None:
        with self._tasks_lock:
            self._tasks.pop(task.future, None)
        future = task.future
        if future.done():
            return
        try:
            status = dask_future.status
            if status in ("finished", "cancelled"):  # cancelled: raises why
                outcome = dask_future.result()
            else:
                outcome = None
                error = dask_future.exception()
        except Exception as exc:  # its result was lost, or the client closed
            outcome, error = None, exc
        if outcome is None:
            from distributed.client import FutureCancelledError

            if isinstance(error, FutureCancelledError):
                error = self._after_cancellation(task, error)
                if error is None:  # submitted again
                    return
            settle_future(future, exception=self._describe_dask_error(task, error))
            return
        if isinstance(outcome, RefusedRerun):
            retry = f"zoopipe refused to run it again when Dask rescheduled it to {outcome.worker}"
            settle_future(future, exception=_lost(task.name, retry))
            return
        self._record_final_progress(task.token, outcome.progress)
        # A stopped outcome, yet not cancelled here: another client cancelled it.
        outcome.settle(future, task.name)

    def _describe_dask_error(self, task: _DaskTask, error: BaseException | None) -> BaseException:
        from distributed.scheduler import KilledWorker

        if isinstance(error, KilledWorker):
            return _lost(task.name, "Dask did not run it again")
        if isinstance(error, WorkerLost):
            return error
        if error is None:
            return RuntimeError(f"the Dask task of {task.name} ended without a result")
        remote = RemoteError.from_exception(error)
        return remote

    def _after_cancellation(self, task: _DaskTask, error: Any) -> BaseException | None:
        """What a task Dask cancelled (neither the user nor this engine did) ends with: None
        when it is submitted again, else its error.

        - It was running on a worker that died: WorkerLost, never run again, as
          any task of a dead worker.
        - Else, cancelled because a shared object it needs was lost: it never ran, or it ran
          and its result was lost with the worker, which Dask recomputes for any task whose
          inputs survive. It is submitted again (the object is scattered again first), up to
          SHARED_LOSS_ATTEMPTS times in all.
        - Else: the cancellation itself (another client cancelled it, say).
        """
        if not task.shared_keys:
            return error
        fate = self._fate_on_removed_workers(error.key)
        if fate == "processing":
            return _lost(task.name, "Dask did not run it again")
        if fate is None:
            return _lost(task.name, "the scheduler could not tell whether it ran")
        if fate != "result-lost" and error.reason not in _LOST_DEPENDENCY_REASONS:
            return error
        if task.attempt >= SHARED_LOSS_ATTEMPTS:
            return WorkerLost(
                f"Dask cancelled {task.name} {task.attempt} times because the workers holding "
                f"the shared object(s) {task.shared_keys} it needs died, although the engine "
                "scattered them again each time. Check the worker logs for why workers keep "
                "dying; resubmit it once they stay up"
            )
        with self._tasks_lock:
            if task.future.done():
                return error
            self._tasks[task.future] = task
        try:
            self._launch(task)
        except Exception as exc:
            with self._tasks_lock:
                self._tasks.pop(task.future, None)
            return exc
        return None

    def _fate_on_removed_workers(self, key: str) -> str | None:
        """What the removal of workers did to the task ``key``: "processing" (a removed worker
        was running it: it had started), "result-lost" (a removed worker held its result),
        "" (neither), or None when the scheduler cannot be asked."""

        def fate(key: str, attribute: str, dask_scheduler: Any = None) -> str:
            # The scheduler logs each removed worker's tasks before it forgets the data it
            # lost and, with it, the tasks that need that data. "processing" counts tasks
            # queued on the worker too: only one that started (recorded by run_task's rerun
            # guard) ran. Without the guard (allowed-failures 0), a task running on a dead
            # worker errs with KilledWorker at once and is never cancelled.
            started = key in getattr(dask_scheduler, attribute, {})
            found = ""
            for _, message in dask_scheduler.get_events("all"):
                if isinstance(message, dict) and message.get("action") == "remove-worker":
                    if started and key in message.get("processing-tasks", ()):
                        return "processing"
                    if key in message.get("lost-computed-tasks", ()):
                        found = "result-lost"
            return found

        try:
            return str(self._client.run_on_scheduler(fate, key, STARTED_ATTRIBUTE))
        except Exception as exc:
            _log.debug("DaskEngine could not ask the scheduler about %s: %s", key, exc)
            return None

    def _on_event(self, event: Any) -> None:
        # On the client's event loop: hand over to the engine thread, so progress callbacks
        # that take locks or call the engine never block Dask's event loop.
        self._events.put(event[1])

    def _deliver_event(self, message: dict[str, Any]) -> None:
        if "environment_failed" in message:  # a worker that joined later
            _log.warning(
                "DaskEngine: worker %s could not install the requirements, so it gets no work: %s",
                message.get("worker"),
                message["environment_failed"],
            )
            return
        try:
            payload = pickle.loads(message["payload"])
        except Exception:
            _log.exception("DaskEngine got a progress message it cannot read")
            return
        self._offer_progress(message["token"], message["sequence"], message["key"], payload)


def _lost(name: str, retry: str) -> WorkerLost:
    return WorkerLost(
        f"the Dask worker running {name} died before returning a result; other tasks are "
        f"unaffected and {retry}. A SIGKILL often comes from the worker's memory limit or the "
        "out-of-memory killer: check the worker logs. Resubmit it if it is safe to run again"
    )
