"""RayEngine: runs zoopipe tasks on a Ray cluster, local or remote (registered as ``"ray"``).

How it works:

- Each ``submit`` is one Ray task (``max_retries=0``) with this engine's ``num_cpus`` and
  ``memory`` (and ``remote_options`` over them), and the Ray runtime environment built from
  :meth:`RayEngine.prepare`. A task whose worker dies fails only its future with
  :class:`WorkerLost`; Ray never re-runs it. While the pipe actors ``start`` readied are
  waiting (see ``warm_workers``), ``submit`` calls run on them instead: their workers are
  up, so a first map does not wait for Ray to start any. An actor holds at most
  ``POOL_DEPTH`` calls (one running, one queued so it never waits for the driver); further
  calls wait on the driver and go to the first actor with room, as ``ray.util.ActorPool``
  does, so no call waits behind one that runs long while another actor is free. When such an
  actor dies, the call it was running fails with WorkerLost and the calls queued behind it,
  which never started, run again elsewhere.
- Each ``submit_dedicated`` (every pipe or shard of a PipeManager) runs in its own actor of
  class ``RayPipeWorker`` (``max_restarts=0``, ``max_task_retries=0``) with the same resources
  and runtime environment, named ``zoopipe-pipe-<token>``; the actor is killed once its one
  call has finished, which frees its resources. ``start`` readies a few such actors ahead
  (see ``warm_workers``), so the first pipes do not wait for a worker process to start.
- Progress goes from tasks to a small async actor, the sink, without blocking the task; a
  driver thread long-polls it. Each task also returns its last payload per key with its result,
  so ``progress()`` holds a task's final payload once its future is done.
- Outcomes are returned by the task wrapper (``zoopipe_ray._worker.run_task``), not raised, so
  the driver rebuilds the original exception with a :class:`RemoteError` cause.
- ``share`` is ``ray.put``; ``RayRef.get()`` is ``ray.get``, once per worker process.

Ray is imported when the engine starts, never when this module is imported.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import dataclasses
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from zoopipe_core.engines import (
    FROM_PROJECT,
    Engine,
    Outcome,
    RemoteError,
    SharedRef,
    WorkerEnvironment,
    WorkerFacts,
    WorkerLost,
    callable_name,
    check_builds,
    check_environment_choice,
    code_checks,
    gather_facts,
    host_build,
    is_empty,
    plan_environment,
    prime_worker,
    settle_future,
    startup_environment,
    worker_import_error,
    worker_preloads,
)
from zoopipe_core.installers import installer_message
from zoopipe_ray._worker import (
    KILL,
    STOP,
    ProgressSink,
    RayRef,
    remote_pipe_worker,
    run_task,
)
from zoopipe_ray.runtime_env import (
    check_address,
    check_upload_size,
    merge_runtime_envs,
    parse_address,
    runtime_env_for,
    upload_code,
)

__all__ = ["RayEngine", "runtime_env_for"]

_log = logging.getLogger(__name__)

#: Most worker processes ``start`` warms when ``warm_workers`` is not given.
DEFAULT_WARM_WORKERS = 16

#: Seconds ``start`` waits for the CPUs of tasks that just ended to show as free again, before
#: it counts the pipe actors to ready (a busy cluster's CPUs stay taken: it readies fewer).
LEASE_SETTLE_SECONDS = 0.25

#: Seconds ``start`` waits for every node to report what its workers have (see ``environment``).
PROBE_TIMEOUT = 60.0

#: Calls a readied pipe actor holds at once for submit(): the one it runs and one queued, so it
#: goes on without a round trip to the driver; the rest wait on the driver for the first actor
#: with room (queued deeper, a call may wait behind a stuck one while another actor idles).
POOL_DEPTH = 2

#: Seconds ``start`` waits for readied pipe actors; a busy cluster may not start them all that soon.
WARM_UP_TIMEOUT = 60.0

#: Seconds ``start`` waits for the start-up handshake's answers. Its first call on a new worker
#: waits for the worker's runtime_env: Ray's own setup timeout (600 s unless the runtime_env's
#: ``config`` says otherwise) ends a slow install with its error first.
HANDSHAKE_TIMEOUT = 660.0

#: Seconds a pipe actor readied by ``start`` waits for a pipe before it is killed: it holds
#: its CPUs and memory, which other work on the cluster may need.
WARM_ACTOR_IDLE = 10.0

_MISSING_RAY = 'Ray is not installed; install it with: pip install "zoopipe-core[ray]"'

#: Ray options the engine sets itself, refused in ``remote_options``, and why.
_ENGINE_OPTIONS = {
    "name": "the engine names each task after its function",
    "runtime_env": "use engine.prepare(WorkerEnvironment(...)), or runtime_env= for ray.init",
    "max_retries": "Ray never re-runs a task (a lost worker is WorkerLost); retry in the caller",
    "retry_exceptions": "Ray never re-runs a task; retry in the caller (ParallelMap(retries=...))",
    "num_returns": "each task returns one outcome to the engine",
}


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ImportError(_MISSING_RAY) from exc
    return ray


# --------------------------------------------------------------------------- the engine


@dataclasses.dataclass(eq=False)
class _RayTask:
    future: concurrent.futures.Future[Any]
    name: str
    token: str
    object_ref: Any
    kill_at: float | None = None  # when a cancelled task is force-killed
    killed: bool = False
    stop_requested: bool = False  # the sink holds a stop request for it, to drop when it ends
    last_resort_at: float | None = None  # when a killed task still running gets ray.cancel
    actor: Any = None  # the RayPipeWorker of a submit_dedicated or pooled call, None for a task
    actor_name: str = ""
    ray_future: Any = None  # the concurrent future of object_ref, resolved by Ray
    call: tuple[Any, ...] | None = None  # (fn, args, kwargs) of a pooled call, to run it again
    requeue: bool = False  # a pooled call that never ran on an actor that died: run it again


class RayEngine(Engine):
    """Runs submitted callables as Ray tasks, and pipes as Ray actors, on a local Ray or a
    cluster (``"ray"``).

    ``submit`` runs a callable as one Ray task; ``submit_dedicated`` (how a PipeManager runs
    each pipe or shard) runs it in its own ``RayPipeWorker`` actor, killed when it ends.

    - ``address``: None starts a local Ray, or joins the one this process (or this machine)
      already runs; ``"host:port"``, ``"ray://host:port"`` or ``"auto"`` connect to a cluster.
      An unreachable address raises ConnectionError after ``connect_timeout`` seconds: there is
      never a silent local run.
    - ``num_cpus`` and ``memory`` (bytes): the Ray resources each task and each pipe actor
      requests; Ray runs one only where they are free, so they bound how many run at once.
    - ``remote_options``: further Ray options of each task and pipe actor, merged over
      ``num_cpus`` and ``memory`` (``{"num_cpus": 0.5, "resources": {"disk": 1},
      "scheduling_strategy": "SPREAD"}``), checked by Ray at ``start``. A ``num_cpus`` here
      counts in ``capacity()``. The options the engine sets itself (``name``,
      ``runtime_env``, ``max_retries``, ``retry_exceptions``, ``num_returns``) are refused.
    - ``warm_workers``: how many pipe actors ``start`` readies (starts, and loads zoopipe's
      native module in), so the first pipes do not wait for a worker process (0.3-0.7 s each
      on a 2-core machine). Until then they run ``submit`` calls. A readied actor holds its
      CPUs and memory until a pipe takes it, ``prepare`` changes the environment, or
      ``WARM_ACTOR_IDLE`` (10 s) passes without a call. An actor that cannot import
      zoopipe_core fails ``start`` with its error. None: one per free slot of the cluster,
      at most 16; 0: none (``submit`` calls are plain tasks).
    - ``ray_init_kwargs``: passed to ``ray.init`` when this engine connects (``namespace``,
      ``runtime_env``, ``num_gpus``...). An engine disconnects at shutdown only if it
      called ``ray.init`` itself. A local Ray it starts has no dashboard unless
      ``include_dashboard=True`` is passed (it starts faster without).
    - ``environment``: what workers get at ``start``. ``"project"`` (the default): the project
      the engine is started in (``WorkerEnvironment.from_project``; none outside a project); a
      ``WorkerEnvironment``: that one; None: nothing (workers are provisioned already). A
      ``prepare`` before ``start`` replaces it. At start each node reports what its workers
      have (one probe task per node, at most ``PROBE_TIMEOUT`` s), and only what some node
      lacks becomes the runtime_env: on a local cluster sharing this interpreter, no install,
      and no upload of code its workers import from the same files. A
      node running another zoopipe build gets zoopipe's packages, compiled core included, as
      files; then every readied worker must report this driver's build (the handshake). A
      Python minor or pydantic major version that differs from the driver's fails ``start``
      with a table (other differences are a warning). Before anything is uploaded, code over
      Ray's package limit fails with the largest files and the ignore lines that would leave
      them out.
    - ``keep_ray``: True never calls ``ray.shutdown``, not even for a Ray this engine started:
      it stays up for the rest of the process (RayMap's way, like ray-map's), and later engines
      join it.

    Example:
        >>> from zoopipe_ray import RayEngine
        >>> with RayEngine(num_cpus=1) as engine:
        ...     futures = [engine.submit(pow, 2, n) for n in range(4)]
        ...     [f.result() for f in futures]
        ...     engine.submit_dedicated(sum, [1, 2, 3]).result()  # in its own actor
        [1, 2, 4, 8]
        6
    """

    name = "ray"
    shares_memory = True  # each node's object store

    def __init__(
        self,
        address: str | None = None,
        num_cpus: float = 1,
        memory: int | None = 512 * 1024**2,
        *,
        connect_timeout: float = 10.0,
        warm_workers: int | None = None,
        remote_options: dict[str, Any] | None = None,
        keep_ray: bool = False,
        environment: WorkerEnvironment | str | None = FROM_PROJECT,
        **ray_init_kwargs: Any,
    ) -> None:
        super().__init__()
        check_environment_choice(environment, "RayEngine")
        self.environment_choice = environment
        self._user_prepared = False  # prepare() before start replaces environment_choice
        if num_cpus < 0:
            raise ValueError(f"num_cpus must be >= 0, got {num_cpus!r}")
        if warm_workers is not None and (not isinstance(warm_workers, int) or warm_workers < 0):
            raise ValueError(f"warm_workers must be None or an int >= 0, got {warm_workers!r}")
        self.warm_workers = warm_workers
        if memory is not None and (not isinstance(memory, int) or memory <= 0):
            raise ValueError(f"memory must be a positive number of bytes or None, got {memory!r}")
        if address is not None:
            parse_address(address)  # ValueError for a malformed address, before any connection
        self.address = address
        self.num_cpus = num_cpus
        self.memory = memory
        self.connect_timeout = connect_timeout
        self.remote_options = _check_remote_options(remote_options)
        self.keep_ray = keep_ray
        self.ray_init_kwargs = ray_init_kwargs
        self._runtime_env: dict[str, Any] = {}
        self._uploaded_env: dict[str, Any] | None = None
        self._owns_ray = False
        self._remote_run: Any = None
        self._sink: Any = None
        self._sink_name = ""
        self._remote_by_name: dict[str, Any] = {}  # run_task with each function's task options
        self._tasks: dict[concurrent.futures.Future[Any], _RayTask] = {}
        self._tasks_lock = threading.Lock()
        self._actors: dict[str, Any] = {}  # name -> handle of every pipe actor not yet killed
        self._ready_actors: list[tuple[str, Any]] = []  # readied by start(), waiting for a pipe
        self._ready_until = 0.0  # monotonic time after which they are released
        # The calls each readied actor runs or queues for submit() (see _submit), oldest first.
        self._pool_calls: dict[str, collections.deque[_RayTask]] = {}
        # Pooled calls waiting on the driver for an actor with room, oldest first.
        self._backlog: collections.deque[_RayTask] = collections.deque()
        self._pool_covers_cluster = False  # True: no CPU is free beside the readied actors
        self._done: queue.Queue[Any] = queue.Queue()
        self._shared: list[RayRef] = []
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def __repr__(self) -> str:
        where = self.address or "local"
        return f"<RayEngine {where} num_cpus={self.num_cpus} memory={self.memory} {self._state}>"

    # ------------------------------------------------------------------ lifecycle

    def _start(self) -> None:
        ray = _import_ray()
        if self.remote_options:
            self._check_options_with_ray(ray)
        spec = self.environment if self._user_prepared else startup_environment(self.environment_choice)
        if spec is not None:
            check_upload_size(spec)  # before contacting the cluster
        if self.address is not None:
            check_address(self.address, self.connect_timeout)
        if ray.is_initialized():
            connected = ray.get_runtime_context().gcs_address
            if (
                self.address not in (None, "auto")
                and not self.address.startswith("ray://")
                and self.address.split("://")[-1] != connected
            ):
                raise RuntimeError(
                    f"RayEngine(address={self.address!r}): this process is already connected to "
                    f"the Ray cluster at {connected!r}, and Ray allows one cluster per process. "
                    "Call ray.shutdown() first, or use address=None to run on the connected one"
                )
            self._owns_ray = False
        else:
            kwargs = dict(self.ray_init_kwargs)
            kwargs.setdefault("log_to_driver", True)
            if self.address is None:
                # A local Ray without the dashboard's modules starts 4-5 s sooner on a loaded
                # 2-core machine (docs/benchmarks.md); include_dashboard=True brings it back.
                kwargs.setdefault("include_dashboard", False)
            try:
                ray.init(address=self.address, **kwargs)
            except ConnectionError as exc:
                raise ConnectionError(
                    f"RayEngine could not connect to Ray at {self.address!r}: {exc}. Check the "
                    "address and that the cluster is running (`ray status`)"
                ) from exc
            self._owns_ray = True
        self._stopping.clear()
        self._done = queue.Queue()
        self._remote_run = ray.remote(max_retries=0)(run_task)
        self._remote_by_name = {}
        # Named, so tasks carry the name and look the handle up once per worker process.
        self._sink_name = f"zoopipe-progress-{uuid.uuid4().hex}"
        self._sink = (
            ray.remote(num_cpus=0, max_restarts=0)(ProgressSink).options(name=self._sink_name).remote()
        )
        self._threads = [
            threading.Thread(
                target=self._poll_progress, args=(self._sink,), daemon=True, name="zoopipe-ray-progress"
            ),
            threading.Thread(
                target=self._resolve_loop, args=(self._done,), daemon=True, name="zoopipe-ray-results"
            ),
        ]
        for thread in self._threads:
            thread.start()
        try:
            if spec is not None:
                needed = self._provision(ray, spec)
                self._apply_environment(needed)
                self._environment = needed
            self._warm_up(ray)
            if spec is not None and not is_empty(self._environment):
                self._handshake(ray)
        except BaseException:
            self._shutdown(timeout=0)  # stop the threads, and Ray if this engine started it
            raise

    def _provision(self, ray: Any, spec: WorkerEnvironment) -> WorkerEnvironment:
        """What of ``spec`` the cluster's nodes lack, from one probe per node."""
        facts = self._node_facts(ray, spec)
        return plan_environment(spec, facts, "RayEngine", _log)

    def _node_facts(self, ray: Any, spec: WorkerEnvironment) -> list[WorkerFacts] | None:
        """gather_facts on every alive node (a task of 0 CPUs pinned to it, in the cluster's
        own environment); None when the workers cannot import zoopipe_core."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        nodes = [node["NodeID"] for node in ray.nodes() if node.get("Alive")]
        probe = ray.remote(num_cpus=0, max_retries=0)(gather_facts)
        arguments = (spec.requirements, code_checks(spec), spec.ignore_patterns())
        refs = [
            probe.options(
                name="zoopipe-environment-probe",
                scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False),
            ).remote(*arguments)
            for node in nodes
        ]
        _, pending = ray.wait(refs, num_returns=len(refs), timeout=PROBE_TIMEOUT)
        if pending:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise TimeoutError(
                f"RayEngine: {len(pending)} of {len(refs)} node(s) did not report their workers' "
                f"environment within {PROBE_TIMEOUT:g} s (a task of 0 CPUs could not start there); "
                "check `ray status` and the nodes' raylet logs"
            )
        try:
            return list(ray.get(refs))
        except Exception as exc:
            cause = getattr(exc, "cause", None) or exc
            if isinstance(cause, ModuleNotFoundError) and (cause.name or "").startswith("zoopipe_core"):
                return None
            raise RuntimeError(f"RayEngine could not read its workers' environment: {cause}") from exc

    def _handshake(self, ray: Any) -> None:
        """Every readied worker (or one task, when none was readied) must run this driver's
        zoopipe build: EnvironmentMismatch with a table otherwise."""
        if self._ready_actors:
            refs = [actor.build.remote() for _, actor in self._ready_actors]
        else:
            probe = ray.remote(num_cpus=0, max_retries=0)(host_build)
            refs = [probe.options(runtime_env=self._task_runtime_env()).remote()]
        check_builds("RayEngine", self._get_started(ray, refs, timeout=HANDSHAKE_TIMEOUT))

    def _check_options_with_ray(self, ray: Any) -> None:
        """Let Ray check ``remote_options`` now (it needs no connection), not at the first task."""
        try:
            ray.remote(run_task).options(**self.remote_options)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"RayEngine(remote_options={self.remote_options!r}): {exc}") from exc

    @property
    def cpus_per_task(self) -> float:
        """The CPUs each task requests: ``remote_options["num_cpus"]``, else ``num_cpus``.

        Example:
            >>> RayEngine(num_cpus=2).cpus_per_task, RayEngine(remote_options={"num_cpus": 0.5}).cpus_per_task
            (2.0, 0.5)
        """
        return float(self.remote_options.get("num_cpus", self.num_cpus))

    def _warm_up(self, ray: Any) -> None:
        """Ready pipe actors for the first pipes (see ``warm_workers``)."""
        count = self.warm_workers
        if count is None:
            cpus = _free_cpus(ray)
            slots = int(cpus // self.cpus_per_task) if self.cpus_per_task > 0 else 1
            count = min(slots, DEFAULT_WARM_WORKERS)
        if count > 0:
            self._ready_pipe_actors(ray, count)
        # Actors of 0 CPUs leave every CPU to tasks: then a call never queues behind another.
        self._pool_covers_cluster = self.cpus_per_task > 0 and len(self._ready_actors) >= self._capacity()

    def _ready_pipe_actors(self, ray: Any, count: int) -> None:
        """Start ``count`` pipe actors and load zoopipe in them, for the first pipes to take."""
        actors = [self._new_pipe_actor() for _ in range(count)]
        modules = worker_preloads()
        primes = {actor.prime.remote(prime_worker, modules): (name, actor) for name, actor in actors}
        ready, pending = ray.wait(list(primes), num_returns=len(primes), timeout=WARM_UP_TIMEOUT)
        # The cluster is busy: they are only a head start, not needed.
        self._kill_actors([primes[ref][0] for ref in pending])
        try:
            self._get_started(ray, ready)
        except BaseException:
            self._kill_actors([name for name, _ in actors])
            raise
        with self._tasks_lock:
            self._ready_actors = [primes[ref] for ref in ready]
            self._pool_calls = {name: collections.deque() for name, _ in self._ready_actors}
            self._ready_until = time.monotonic() + WARM_ACTOR_IDLE

    @staticmethod
    def _get_started(ray: Any, refs: list[Any], timeout: float | None = None) -> list[Any]:
        """``ray.get`` of the first calls on new workers: a runtime_env that could not be set up
        is a RuntimeError with the installer's own lines first; a worker that could not import
        what the call needs is explained by ``worker_import_error``."""
        import ray.exceptions as rex

        if timeout is not None:
            # ray.wait, not ray.get(timeout=): under load the latter raised a SystemError that
            # wrapped its GetTimeoutError, which read as a worker that could not import zoopipe.
            _, pending = ray.wait(refs, num_returns=len(refs), timeout=timeout)
            if pending:
                raise TimeoutError(
                    f"RayEngine: {len(pending)} of {len(refs)} new worker(s) did not answer within "
                    f"{timeout:g} s of start (their runtime_env still installing, or no room on the "
                    "cluster to start them); check `ray status` and the runtime_env agent's log "
                    "(runtime_env_setup-*.log in the session's logs)"
                )
        try:
            return list(ray.get(refs))
        except rex.RuntimeEnvSetupError as exc:
            raise RuntimeError(environment_setup_message(exc)) from exc
        except Exception as exc:
            cause = getattr(exc, "cause", None) or exc  # the worker's own exception
            raise worker_import_error("RayEngine", cause) from exc

    def _new_pipe_actor(self) -> tuple[str, Any]:
        """A RayPipeWorker with this engine's resources and environment, and its name."""
        options = self._task_options(f"zoopipe-pipe-{uuid.uuid4().hex}")
        options.update(max_restarts=0, max_task_retries=0)
        actor = remote_pipe_worker().options(**options).remote()
        with self._tasks_lock:
            self._actors[options["name"]] = actor
        return options["name"], actor

    def _release_ready_actors(self) -> None:
        """Kill the readied pipe actors no pipe took, freeing their CPUs and memory; one still
        running submit() calls takes no more and is killed when they end."""
        with self._tasks_lock:
            names = [name for name, _ in self._ready_actors]
            self._ready_actors = []
            idle = [name for name in names if not self._pool_calls.get(name)]
            for name in idle:
                self._pool_calls.pop(name, None)
        if idle:
            self._kill_actors(idle)

    def _retire_pool_actor(self, name: str, running: _RayTask | None = None) -> None:
        """Take a readied actor out of the pool as it dies (with ``_tasks_lock`` held). It ran
        its calls one at a time, in order: ``running`` (by default the oldest call not
        finished) may have started; the calls queued behind it never did, so they run again."""
        self._ready_actors = [(n, a) for n, a in self._ready_actors if n != name]
        calls = list(self._pool_calls.pop(name, ()))
        if running is None:
            running = next((t for t in calls if not _succeeded(t.ray_future)), None)
        for task in calls:
            if task is not running and not _succeeded(task.ray_future):
                task.requeue = True

    def _uses_pool(self) -> bool:
        """Whether a submit() call goes to the readied actors (with ``_tasks_lock`` held): while
        the pool lasts, when they hold every CPU of the cluster (a task could not start before
        they are released anyway), or when one of them is idle; else the call is a task on the
        other CPUs, not queued behind a call that may run long."""
        if not self._ready_actors:
            return False
        return self._pool_covers_cluster or any(not self._pool_calls[name] for name, _ in self._ready_actors)

    def _actor_with_room(self) -> tuple[str, Any] | None:
        """The least loaded readied actor holding fewer than POOL_DEPTH calls (with
        ``_tasks_lock`` held); when the pool does not cover the cluster, only an idle one."""
        if not self._ready_actors:
            return None
        name, actor = min(self._ready_actors, key=lambda entry: len(self._pool_calls[entry[0]]))
        held = len(self._pool_calls[name])
        if held >= POOL_DEPTH or (held and not self._pool_covers_cluster):
            return None
        return name, actor

    def _task_options(self, name: str) -> dict[str, Any]:
        options: dict[str, Any] = {"num_cpus": self.num_cpus, "name": name}
        if self.memory is not None:
            options["memory"] = self.memory
        options.update(self.remote_options)
        # A runtime_env given to an engine that joined a running Ray reached no ray.init: the
        # tasks carry it.
        given_unapplied = bool(self.ray_init_kwargs.get("runtime_env")) and not self._owns_ray
        if self._runtime_env or given_unapplied:
            options["runtime_env"] = self._task_runtime_env()
        return options

    def _shutdown(self, timeout: float) -> None:
        ray = _import_ray()
        if threading.current_thread() in self._threads:
            raise RuntimeError(
                "shutdown() was called from a future or progress callback, which runs on a "
                "RayEngine thread; call it from another thread"
            )
        with self._tasks_lock:
            tasks = list(self._tasks.values())
        for task in tasks:
            task.future.cancel()  # its done callback asks the task to stop
        tasks = [task for task in tasks if task.object_ref is not None]
        refs = [task.object_ref for task in tasks]
        if refs:
            _, unfinished = ray.wait(refs, num_returns=len(refs), timeout=timeout)
            if unfinished:
                stuck = [task for task in tasks if task.object_ref in set(unfinished)]
                for task in stuck:
                    self._ray_cancel(task, force=True)
                _, unfinished = ray.wait(unfinished, num_returns=len(unfinished), timeout=5.0)
                for task in stuck:
                    if task.object_ref in set(unfinished) and task.last_resort_at is not None:
                        self._last_resort_cancel(task)  # not started yet, or deaf to KILL
        with self._tasks_lock:
            self._ready_actors = []
            self._pool_calls = {}
            self._backlog.clear()
        self._kill_actors(list(self._actors))  # every pipe actor this run created and not killed
        self._stopping.set()
        self._done.put(None)
        with contextlib.suppress(Exception):  # the actor is already gone
            ray.kill(self._sink)
        for thread in self._threads:
            thread.join(timeout=5.0)
        self._threads = []
        self._sink = None
        with self._tasks_lock:
            self._tasks.clear()
        shared, self._shared = self._shared, []
        for ref in shared:
            ref.release()
        del shared
        if self._owns_ray and not self.keep_ray:
            ray.shutdown()
        self._owns_ray = False

    # ------------------------------------------------------------------ environment

    def _prepare(self, environment: WorkerEnvironment) -> None:
        if not self.is_running:
            self._user_prepared = True  # start() narrows this one instead of environment_choice
            check_upload_size(environment)
        self._apply_environment(environment)

    def _apply_environment(self, environment: WorkerEnvironment) -> None:
        self._runtime_env = runtime_env_for(environment)
        self._uploaded_env = None  # code is uploaded at the next submit, once connected
        self._remote_by_name = {}  # their options carry the previous environment
        if self.is_running:
            self._release_ready_actors()  # they run the previous environment
            self._drain_backlog()  # calls waiting for them run as tasks in the new one

    def _task_runtime_env(self) -> dict[str, Any]:
        """The runtime_env with local code uploaded to the cluster, once per ``prepare``, merged
        with the user's own (theirs wins where both set a value; each such value is logged)."""
        if self._uploaded_env is None:
            ours = upload_code(self._runtime_env, self.environment, _log)
            merged, conflicts = merge_runtime_envs(ours, self._user_runtime_env())
            for conflict in conflicts:
                _log.warning("RayEngine: %s (set it in one place to silence this)", conflict)
            self._uploaded_env = merged
        return self._uploaded_env

    def _user_runtime_env(self) -> dict[str, Any]:
        """The user's runtime_env: ``RayEngine(runtime_env=...)``, else the one the connected
        Ray job was started with."""
        given = self.ray_init_kwargs.get("runtime_env")
        if given is not None:
            return dict(given)
        ray = _import_ray()
        if not ray.is_initialized():
            return {}
        return dict(ray.get_runtime_context().runtime_env or {})

    # ------------------------------------------------------------------ tasks

    def _submit(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> concurrent.futures.Future[Any]:
        name = callable_name(fn)
        task = _RayTask(concurrent.futures.Future(), name, uuid.uuid4().hex, None, call=(fn, args, kwargs))
        if self._place_pooled(task):
            return self._stoppable(task)
        self._send_as_task(task)
        return self._track(task)

    def _remote_for(self, name: str) -> Any:
        """run_task with the task options of the function ``name``; ``.options()`` costs about
        0.1 ms, so it is made once per name (and per environment)."""
        remote = self._remote_by_name.get(name)
        if remote is None:
            remote = self._remote_by_name[name] = self._remote_run.options(**self._task_options(name))
        return remote

    def _place_pooled(self, task: _RayTask, first: bool = False) -> bool:
        """Give a submit() call to the readied actors through the backlog (at its head with
        ``first``), which sends it to the first with room: their workers are started and have
        zoopipe loaded, so the first calls wait neither for Ray to start workers nor for the
        actors' CPUs. False when the pool takes no call now: it runs as a task."""
        with self._tasks_lock:
            if not self._uses_pool():
                return False
            self._tasks[task.future] = task
            # Unsent until the backlog sends it (a call run again forgets its dead actor).
            task.object_ref, task.actor, task.actor_name = None, None, ""
            if first:
                self._backlog.appendleft(task)
            else:
                self._backlog.append(task)
        self._drain_backlog()
        return True

    def _call_pool_actor(self, task: _RayTask, pooled: tuple[str, Any]) -> None:
        """Send ``task``'s call to the readied actor ``pooled`` and queue it there (with
        ``_tasks_lock`` held: the deque's order is the order Ray runs them in, whichever thread,
        a caller's or the results thread, submits)."""
        assert task.call is not None
        fn, args, kwargs = task.call
        task.actor_name, task.actor = pooled
        task.object_ref = task.actor.run.options(name=task.name).remote(
            fn, args, kwargs, self._sink_name, task.token
        )
        self._pool_calls[task.actor_name].append(task)

    def _drain_backlog(self) -> None:
        """Send waiting calls to the actors with room; when no readied actor is left (released,
        or dead), as tasks. Cancelled ones are dropped."""
        sent: list[_RayTask] = []
        as_tasks: list[_RayTask] = []
        with self._tasks_lock:
            while self._backlog:
                task = self._backlog[0]
                if task.future.cancelled():
                    self._backlog.popleft()
                    self._tasks.pop(task.future, None)
                    continue
                if not self._ready_actors:
                    as_tasks.extend(self._backlog)
                    self._backlog.clear()
                    break
                pooled = self._actor_with_room()
                if pooled is None:
                    break
                self._backlog.popleft()
                self._call_pool_actor(task, pooled)
                sent.append(task)
        for task in as_tasks:  # outside the lock: the first may upload the environment's code
            if task.future.cancelled():
                with self._tasks_lock:
                    self._tasks.pop(task.future, None)
                continue
            self._send_as_task(task)
            sent.append(task)
        for task in sent:
            self._watch(task)

    def _send_as_task(self, task: _RayTask) -> None:
        """Run a pooled call as a plain Ray task instead."""
        assert task.call is not None
        fn, args, kwargs = task.call
        task.actor, task.actor_name, task.call = None, "", None
        task.object_ref = self._remote_for(task.name).remote(fn, args, kwargs, self._sink_name, task.token)

    def _run_again(self, task: _RayTask) -> None:
        """Run a pooled call whose actor died before it started: on another readied actor
        (first in the backlog), or as a task; the same future, still cancellable."""
        assert task.call is not None
        task.requeue = False
        if self._place_pooled(task, first=True):
            return
        self._send_as_task(task)
        self._watch(task)

    def _track(self, task: _RayTask) -> concurrent.futures.Future[Any]:
        """Resolve ``task.future`` when its Ray call ends (on the results thread)."""
        with self._tasks_lock:
            self._tasks[task.future] = task
        self._watch(task)
        return self._stoppable(task)

    def _stoppable(self, task: _RayTask) -> concurrent.futures.Future[Any]:
        """``task.future``, whose cancel() stops the task too, whoever calls it."""
        task.future.add_done_callback(lambda f: self._stop_cancelled(task) if f.cancelled() else None)
        return task.future

    def _watch(self, task: _RayTask) -> None:
        done = self._done
        task.ray_future = task.object_ref.future()
        task.ray_future.add_done_callback(lambda ray_future: done.put((task, ray_future)))

    def _submit_dedicated(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> concurrent.futures.Future[Any]:
        token = uuid.uuid4().hex
        name = callable_name(fn)
        with self._tasks_lock:  # a readied actor no submit() call is using
            idle = [entry for entry in self._ready_actors if not self._pool_calls.get(entry[0])]
            readied = idle[0] if idle else None
            if readied is not None:
                self._retire_pool_actor(readied[0])
        actor_name, actor = readied or self._new_pipe_actor()
        try:
            object_ref = actor.run.options(name=name).remote(fn, args, kwargs, self._sink_name, token)
        except BaseException:
            self._kill_actors([actor_name])
            raise
        return self._track(
            _RayTask(concurrent.futures.Future(), name, token, object_ref, actor=actor, actor_name=actor_name)
        )

    def _cancel(self, future: concurrent.futures.Future[Any]) -> bool:
        future.cancel()
        return future.cancelled()

    def _stop_cancelled(self, task: _RayTask) -> None:
        with self._tasks_lock:
            waiting = task.object_ref is None
            if waiting:  # still in the backlog: it never reaches a worker
                with contextlib.suppress(ValueError):
                    self._backlog.remove(task)
                self._tasks.pop(task.future, None)
        if waiting:
            return
        self._ray_cancel(task, force=False)
        task.kill_at = time.monotonic() + self.cancel_grace

    def _ray_cancel(self, task: _RayTask, force: bool) -> None:
        """Ask the call to stop (KeyboardInterrupt in it), or with ``force`` end its worker.

        Through the progress sink (see StopListener), not ``ray.cancel``: that one can abort
        this driver when it races the task's reply. A task whose worker still runs
        ``cancel_grace`` seconds after a KILL request gets ``ray.cancel(force=True)``."""
        if task.actor is not None and force:
            if task.call is not None:  # a pooled call: the calls queued behind it run again
                with self._tasks_lock:
                    if task.actor_name in self._pool_calls:
                        self._retire_pool_actor(task.actor_name, running=task)
            self._kill_actors([task.actor_name])
            task.killed = True
            self._drain_backlog()  # if that was the last readied actor, the waiting calls are tasks
            return
        if force:
            task.killed = True
            task.last_resort_at = time.monotonic() + self.cancel_grace
        sink = self._sink
        if sink is None:
            return
        try:
            sink.request_stop.remote(task.token, KILL if force else STOP)
            task.stop_requested = True
        except Exception as exc:  # Ray is going away
            _log.debug("stopping %s (force=%s) failed: %s", task.name, force, exc)

    def _last_resort_cancel(self, task: _RayTask) -> None:
        """``ray.cancel(force=True)``: for a task whose worker did not end on a KILL request
        (a native call holding the GIL), and which may be racing its own reply."""
        task.last_resort_at = None
        try:
            _import_ray().cancel(task.object_ref, force=True)
        except Exception as exc:  # finished meanwhile
            _log.debug("ray.cancel(%s, force=True) failed: %s", task.name, exc)

    def _kill_actors(self, names: list[str]) -> None:
        """``ray.kill`` these pipe actors (a no-op for one already killed), freeing their CPUs
        and memory."""
        ray = _import_ray()
        with self._tasks_lock:
            actors = [(name, self._actors.pop(name)) for name in names if name in self._actors]
        for name, actor in actors:
            try:
                ray.kill(actor, no_restart=True)
            except Exception as exc:  # already dead, or Ray is going away
                _log.debug("ray.kill(%s) failed: %s", name, exc)

    def _capacity(self) -> int:
        ray = _import_ray()
        cpus = ray.cluster_resources().get("CPU", 0)
        return int(cpus // self.cpus_per_task) if self.cpus_per_task > 0 else int(cpus)

    def _share(self, obj: Any) -> SharedRef:
        ray = _import_ray()
        ref = RayRef(ray.put(obj))
        self._shared.append(ref)
        return ref

    def _unshare(self, ref: SharedRef) -> None:
        for kept in [kept for kept in self._shared if kept.key == ref.key]:
            self._shared.remove(kept)
            kept.release()  # Ray frees the object when the last handle to it is dropped

    # ------------------------------------------------------------------ driver threads

    def _resolve_loop(self, done: queue.Queue[Any]) -> None:
        while True:
            try:
                item = done.get(timeout=0.2)
            except queue.Empty:
                item = ()
            if item is None:
                return
            if item:
                task, ray_future = item
                if task.call is not None:
                    if self._pool_call_ended(task, ray_future):
                        continue  # it never ran: it runs again
                elif task.actor is not None:  # its one call ended: free its CPUs and memory
                    self._kill_actors([task.actor_name])
                try:
                    self._resolve(task, ray_future)
                except Exception:
                    _log.exception("RayEngine failed to resolve the future of %s", task.name)
                if task.stop_requested and self._sink is not None:
                    with contextlib.suppress(Exception):  # Ray is going away
                        self._sink.forget_stops.remote([task.token])
                with self._tasks_lock:
                    self._tasks.pop(task.future, None)
            self._kill_overdue()
            if self._ready_actors and time.monotonic() > self._ready_until and self._pool_is_idle():
                self._release_ready_actors()

    def _pool_is_idle(self) -> bool:
        with self._tasks_lock:
            return not self._backlog and not any(self._pool_calls.values())

    def _pool_call_ended(self, task: _RayTask, ray_future: concurrent.futures.Future[Any]) -> bool:
        """Book a pooled call's end; True when it runs again instead of being resolved: its
        actor died while the call waited in its queue (the call that was running is lost)."""
        error = ray_future.exception()
        with self._tasks_lock:
            self._ready_until = time.monotonic() + WARM_ACTOR_IDLE
            calls = self._pool_calls.get(task.actor_name)
            drained = False
            if calls is not None:
                if error is not None and self._is_lost(error):
                    self._retire_pool_actor(task.actor_name)  # the first news of its death
                elif task in calls:
                    calls.remove(task)
                    # Released while busy (see _release_ready_actors): its last call ended.
                    drained = not calls and all(n != task.actor_name for n, _ in self._ready_actors)
                    if drained:
                        del self._pool_calls[task.actor_name]
            again = task.requeue and not task.future.cancelled()
        if drained:
            self._kill_actors([task.actor_name])
        if again:
            self._run_again(task)
            return True
        self._drain_backlog()  # room on this actor, or no actor left
        task.call = None  # its arguments are not needed any more
        return False

    def _kill_overdue(self) -> None:
        now = time.monotonic()
        with self._tasks_lock:
            overdue = [
                t for t in self._tasks.values() if t.kill_at is not None and t.kill_at <= now and not t.killed
            ]
            unkilled = [
                t for t in self._tasks.values() if t.last_resort_at is not None and t.last_resort_at <= now
            ]
        for task in overdue:
            self._ray_cancel(task, force=True)
        for task in unkilled:
            self._last_resort_cancel(task)

    def _resolve(self, task: _RayTask, ray_future: concurrent.futures.Future[Any]) -> None:
        future = task.future
        if future.cancelled():
            return
        error = ray_future.exception()
        if error is None:
            outcome: Outcome = ray_future.result()
            self._record_final_progress(task.token, outcome.progress)
            outcome.settle(future, task.name)
            return
        settle_future(future, exception=self._describe_ray_error(task, error))

    @staticmethod
    def _is_lost(error: BaseException) -> bool:
        """True when ``error`` says the worker or actor died, not that the call raised."""
        import ray.exceptions as rex

        lost = tuple(
            getattr(rex, name)
            for name in (
                "WorkerCrashedError",
                "NodeDiedError",
                "OutOfMemoryError",
                "ActorDiedError",
                "ActorUnavailableError",
                "LocalRayletDiedError",
                "ObjectLostError",
            )
            if hasattr(rex, name)
        )
        return isinstance(error, lost)

    def _describe_ray_error(self, task: _RayTask, error: BaseException) -> BaseException:
        import ray.exceptions as rex

        if self._is_lost(error):
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
            where = f"actor {task.actor_name}" if task.actor is not None else "worker"
            return WorkerLost(
                f"the Ray {where} running {task.name} died before returning a result "
                f"({type(error).__name__}: {first_line}); other tasks are unaffected and Ray "
                "did not retry it. An OutOfMemoryError or a SIGKILL often means the task needs "
                "more memory: raise RayEngine(memory=...). Resubmit it if it is safe to run again"
            )
        if isinstance(error, rex.TaskCancelledError):
            return concurrent.futures.CancelledError(f"{task.name} was cancelled")
        cause = getattr(error, "cause", None) or error
        remote = RemoteError.from_exception(cause)
        remote.remote_traceback = str(error)
        return remote

    def _poll_progress(self, sink: Any) -> None:
        ray = _import_ray()
        while not self._stopping.is_set():
            try:
                items = ray.get(sink.take.remote(0.5))
            except Exception:
                if not self._stopping.is_set():
                    _log.exception("RayEngine lost its progress sink actor")
                return
            for token, sequence, key, payload in items:
                self._offer_progress(token, sequence, key, payload)


def environment_setup_message(error: BaseException) -> str:
    """What to tell a user whose runtime environment Ray could not create: the installer's own
    error lines first (pip's ``ERROR:`` lines), then Ray's message.

    Example:
        >>> print(environment_setup_message(RuntimeError("Failed to set up runtime environment.\\n"
        ...     "ERROR: No matching distribution found for nope==9.9")))
        RayEngine could not prepare its workers' environment: ERROR: No matching distribution found for nope==9.9
        Fix the requirement (`zoopipe env` lists them), or start with environment=None if the workers are provisioned already. Ray's message: Failed to set up runtime environment.
        ERROR: No matching distribution found for nope==9.9
    """
    text = str(error)
    said = installer_message(text)
    return (
        f"RayEngine could not prepare its workers' environment: {said}\nFix the requirement "
        "(`zoopipe env` lists them), or start with environment=None if the workers are "
        f"provisioned already. Ray's message: {text.strip()}"
    )


def _free_cpus(ray: Any) -> float:
    """The cluster's free CPUs. Ray hands a finished task's worker lease back a few tens of ms
    after the task (the view shows no free CPU right after a burst of tasks): while fewer than
    the cluster's CPUs look free, look again for up to LEASE_SETTLE_SECONDS."""
    total = ray.cluster_resources().get("CPU", 0)
    free = ray.available_resources().get("CPU", 0)
    deadline = time.monotonic() + LEASE_SETTLE_SECONDS
    while free < total and time.monotonic() < deadline:
        time.sleep(0.01)
        free = max(free, ray.available_resources().get("CPU", 0))
    return float(free)


def _succeeded(ray_future: concurrent.futures.Future[Any] | None) -> bool:
    """True when a Ray call's future holds a value: the call ran to its end (raised or not:
    run_task returns an outcome either way)."""
    return (
        ray_future is not None
        and ray_future.done()
        and not ray_future.cancelled()
        and ray_future.exception() is None
    )


def _check_remote_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """``remote_options`` as a dict, refusing the options the engine sets itself."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise TypeError(
            f"RayEngine remote_options must be a dict of Ray options (as for .options(...)), got "
            f"{type(options).__name__} {options!r}"
        )
    for key, why in _ENGINE_OPTIONS.items():
        if key in options:
            raise ValueError(f"RayEngine remote_options cannot set {key!r}: {why}")
    cpus = options.get("num_cpus", 1)
    if isinstance(cpus, bool) or not isinstance(cpus, (int, float)) or cpus < 0:
        raise ValueError(f"RayEngine remote_options num_cpus must be a number >= 0, got {cpus!r}")
    return dict(options)
