"""RayMap: ray-map's ``RayMap`` API (``pip install ray-map``), as a ParallelMap on a RayEngine.

Users arriving from ray-map keep their code: the same constructor arguments, the same
``imap``/``map``/``imap_async``/``map_async``, the same handling of Ray (a local Ray started
lazily with ``runtime_env`` when none is running, never ``ray.shutdown()``). The work itself is
ParallelMap's: bounded in flight, failures as data, per-item timeouts that free the worker.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from zoopipe_core import ParallelMap
from zoopipe_core.engines import callable_name
from zoopipe_ray.engine import RayEngine, _import_ray

__all__ = ["RayMap"]

_log = logging.getLogger(__name__)


class RayMap(ParallelMap):
    """ray-map's ``RayMap(fn, ...)``: map ``fn`` over items on Ray, with ParallelMap's engine.

    - Ray: the first ``imap``/``map`` call joins the Ray this process is connected to
      (``ray.is_initialized()``), or calls ``ray.init(address=address, runtime_env=runtime_env,
      _redis_password=password)`` (a local Ray has no dashboard). ``runtime_env`` only applies
      when RayMap starts Ray; to ship code to a Ray you started, give it to your ``ray.init``.
      RayMap never calls ``ray.shutdown()``, not at :meth:`close` nor at exit: the Ray it
      started stays up for the rest of the process, yours to stop.
    - ``address``: None for a local Ray, ``"host:port"``, ``"ray://host:port"`` or ``"auto"``;
      an unreachable one raises ConnectionError (after ``connect_timeout`` seconds) from the
      first call, never a silent local run.
    - ``remote_options``: Ray options of each task (``{"num_cpus": 0.5, "resources": {...},
      "memory": ...}``); by default a task requests 1 CPU. ``max_pending=-1`` keeps twice as
      many batches in flight as the cluster runs at once (its CPUs / each task's ``num_cpus``).
    - ``batch_size``: items per Ray task (ray-map's default, 8); None adapts it to the measured
      time per item, which is much faster for small items.
    - The keyword-only options are ParallelMap's (``retries``, ``retry_on``, ``key``,
      ``progress``, ``backoff``, ``replay_failures``).

    :meth:`close` (or the end of a ``with`` block) stops the engine's driver threads and
    progress actor, not Ray; a RayMap can be used again after it.

    Example:
        >>> import ray
        >>> from zoopipe_ray import RayMap
        >>> ray_was_running = ray.is_initialized()
        >>> rmap = RayMap(pow)  # no Ray started yet: the first call starts or joins one
        >>> rmap.map([(2, 3), (3, 2)])  # a tuple is spread as positional arguments
        [8, 9]
        >>> list(rmap.imap([(2, -1), (2, "x")], safe_exceptions=True, ret_args=True))[1]
        ((2, 'x'), TypeError("unsupported operand type(s) for ** or pow(): 'int' and 'str'"))
        >>> rmap.close()
        >>> ray.is_initialized()  # RayMap never shuts Ray down
        True
        >>> if not ray_was_running:
        ...     ray.shutdown()  # the Ray it started is yours to stop
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        batch_size: int | None = 8,
        max_pending: int = -1,
        checkpoint_path: str | os.PathLike[str] | None = None,
        address: str | None = None,
        password: str | None = None,
        runtime_env: dict[str, Any] | None = None,
        remote_options: dict[str, Any] | None = None,
        *,
        connect_timeout: float = 10.0,
        retries: int = 0,
        retry_on: type[BaseException] | tuple[type[BaseException], ...] = (Exception,),
        key: Callable[[Any], Any] | None = None,
        progress: bool = False,
        backoff: float = 0.1,
        replay_failures: bool = False,
    ) -> None:
        init_kwargs: dict[str, Any] = {}
        if runtime_env is not None:
            if not isinstance(runtime_env, dict):
                raise TypeError(
                    f"RayMap runtime_env must be a dict (Ray's runtime_env, e.g. "
                    f'{{"working_dir": "."}}), got {type(runtime_env).__name__} {runtime_env!r}'
                )
            init_kwargs["runtime_env"] = runtime_env
        if password is not None:
            init_kwargs["_redis_password"] = password
        # Map tasks request only num_cpus (1) unless remote_options asks for more, as ray-map's;
        # map batches do not use pipe actors, so none is readied.
        engine = RayEngine(
            address,
            memory=None,
            connect_timeout=connect_timeout,
            warm_workers=0,
            remote_options=remote_options,
            keep_ray=True,
            **init_kwargs,
        )
        super().__init__(
            fn,
            engine,
            batch_size,
            max_pending,
            checkpoint_path,
            retries,
            retry_on,
            key,
            progress,
            backoff=backoff,
            replay_failures=replay_failures,
        )
        self.address = address
        self.runtime_env = runtime_env
        self.remote_options = remote_options
        self._start_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<RayMap {callable_name(self.fn)} on {self.engine!r}>"

    def _ready_engine(self) -> Any:
        """Join or start Ray on the first call (not in ``__init__``), as ray-map does; every
        imap, map, imap_async and map_async goes through here."""
        with self._start_lock:
            joining = False
            if not self.engine.is_running:
                joining = _import_ray().is_initialized()
                self.engine.start()
        if joining and self.runtime_env is not None:
            _log.warning(
                "RayMap: Ray was already initialised in this process, so runtime_env=%r is not "
                "used (it applies only when RayMap starts Ray); pass it to your ray.init(...)",
                self.runtime_env,
            )
        return self.engine

    def close(self) -> None:
        """Stop the engine's threads and progress actor; Ray stays up (never ``ray.shutdown``)."""
        self.engine.shutdown()
