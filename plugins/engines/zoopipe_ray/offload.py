"""ray-decorator's API on zoopipe's offload: ``ray_decorator`` and ``ray_zen`` (hydra-zen).

Users arriving from ``ray-decorator`` keep their code with one changed import
(``from zoopipe_ray import ray_decorator, ray_zen``): the same arguments, the same
``RAY_ADDRESS`` and ``RAY_S3_BASE_PATH`` defaults, the same Hydra and hydra-zen integration.
The work is :class:`zoopipe_core.Offload`'s, on a :class:`~zoopipe_ray.RayEngine`: inputs move
by content (an unchanged input is not sent again), through s3fs (no AWS CLI), the caller's
arguments and config are never changed, and a failed run leaves local outputs as they were.

- Ray: ``ray_address`` (default ``RAY_ADDRESS``) None joins the Ray this process is connected
  to, or starts a local one; ``"auto"``, ``"host:port"`` and ``"ray://host:port"`` connect to a
  cluster (an unreachable one is an error, never a local run). Ray is never shut down.
- Storage: ``s3_base_path`` (default ``RAY_S3_BASE_PATH``) is where inputs and outputs travel
  through: an ``s3://bucket/prefix`` URL, or a local path or ``file://`` URL on a filesystem
  every node mounts. With neither (nor ``ZOOPIPE_OFFLOAD_STORAGE``), a store in this host's
  cache directory is used when every node of the cluster is this host, and the call fails,
  before anything is submitted, when a node is elsewhere.

Importing this module imports neither Ray nor hydra-zen.
"""

from __future__ import annotations

import copy
import functools
import logging
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

from zoopipe_core import Offload
from zoopipe_ray.engine import RayEngine, _import_ray

__all__ = ["RayOffload", "RayZen", "ray_decorator", "ray_zen"]  # noqa: F822 - RayZen: see __getattr__

_log = logging.getLogger(__name__)

#: The environment variables ray-decorator reads its defaults from.
ADDRESS_VARIABLE = "RAY_ADDRESS"
S3_BASE_PATH_VARIABLE = "RAY_S3_BASE_PATH"

_MISSING_HYDRA_ZEN = "ray_zen needs hydra-zen; install it with: pip install hydra-zen"


class RayOffload(Offload):
    """An :class:`~zoopipe_core.Offload` on its own :class:`~zoopipe_ray.RayEngine`, made from
    ray-decorator's arguments (what :func:`ray_decorator` and :func:`ray_zen` use).

    ``ray_init_kwargs`` go to the engine's ``ray.init`` (a ``runtime_env`` given while this
    process is already connected to Ray is applied to the offloaded task instead);
    ``ray_remote_kwargs`` are the task's Ray options (``num_cpus``, ``num_gpus``,
    ``resources``, ``memory``...; a ``runtime_env`` there is taken as the task's). The engine
    starts on the first call and keeps Ray up (``keep_ray=True``); :meth:`close` stops its
    threads.

    Example:
        >>> import pathlib, tempfile
        >>> from zoopipe_ray.offload import RayOffload
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "in.txt").write_text("4 5 6")
        >>> def count(words, out_dir):
        ...     pathlib.Path(out_dir, "n.txt").write_text(str(len(open(words).read().split())))
        >>> with RayOffload(deps=["words"], outs=["out_dir"], s3_base_path=str(folder / "store")) as offload:
        ...     offload.call(count, words=folder / "in.txt", out_dir=folder / "out")  # doctest: +SKIP
        >>> (folder / "out" / "n.txt").read_text()  # doctest: +SKIP
        '3'
    """

    def __init__(
        self,
        deps: Iterable[str] = (),
        outs: Iterable[str] = (),
        ray_address: str | None = None,
        s3_base_path: str | os.PathLike[str] | None = None,
        ray_init_kwargs: dict[str, Any] | None = None,
        ray_remote_kwargs: dict[str, Any] | None = None,
        *,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        address = ray_address if ray_address is not None else (os.environ.get(ADDRESS_VARIABLE) or None)
        storage = (
            s3_base_path if s3_base_path is not None else (os.environ.get(S3_BASE_PATH_VARIABLE) or None)
        )
        init_kwargs, remote_options = _engine_options(ray_init_kwargs, ray_remote_kwargs)
        # One task per call, so no pipe actor is readied; memory is asked for only when given.
        engine = RayEngine(
            address,
            memory=None,
            warm_workers=0,
            remote_options=remote_options,
            keep_ray=True,
            **init_kwargs,
        )
        super().__init__(deps, outs, engine, storage, storage_options)
        self.ray_address = address
        #: True when no storage was named anywhere: the host's local store, checked per call.
        self.default_storage = storage is None and not os.environ.get("ZOOPIPE_OFFLOAD_STORAGE")
        self._start_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<RayOffload deps={list(self.deps)} outs={list(self.outs)} on {self.engine!r} store={self.store!r}>"

    def call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` on a Ray worker (see :meth:`zoopipe_core.Offload.call`);
        Ray is joined or started first, and a default local store is checked against the
        cluster's nodes."""
        self.ready()
        return super().call(fn, *args, **kwargs)

    def ready(self) -> RayEngine:
        """Start the engine (join or start Ray) if it is not running, and check that the
        cluster's workers can reach the store; return the engine."""
        engine = self.engine
        assert isinstance(engine, RayEngine)
        with self._start_lock:
            if not engine.is_running:
                ray = _import_ray()
                joining = ray.is_initialized()
                engine.start()
                if joining and engine.ray_init_kwargs:
                    ignored = sorted(set(engine.ray_init_kwargs) - {"runtime_env"})
                    if ignored:
                        _log.warning(
                            "ray_decorator: this process is already connected to Ray, so the "
                            "ray_init_kwargs %s are not used (runtime_env is applied to the task)",
                            ignored,
                        )
        if self.default_storage:
            _check_nodes_share_this_host(engine)
        return engine


def _engine_options(
    ray_init_kwargs: dict[str, Any] | None, ray_remote_kwargs: dict[str, Any] | None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """RayEngine's ``**ray_init_kwargs`` and ``remote_options`` from ray-decorator's: a
    ``runtime_env`` among the remote options (Ray accepts one per task) becomes the engine's."""
    init_kwargs = dict(ray_init_kwargs or {})
    for name in ("address", "ignore_reinit_error"):
        if name in init_kwargs:
            raise ValueError(
                f"ray_init_kwargs cannot hold {name!r}: "
                + (
                    "pass ray_address= instead"
                    if name == "address"
                    else "the engine joins a running Ray itself"
                )
            )
    if ray_remote_kwargs is None:
        return init_kwargs, None
    remote_options = dict(ray_remote_kwargs)
    if "runtime_env" in remote_options:
        runtime_env = remote_options.pop("runtime_env")
        if init_kwargs.get("runtime_env") not in (None, runtime_env):
            raise ValueError(
                "runtime_env is given in both ray_init_kwargs and ray_remote_kwargs; give it once, in "
                "ray_init_kwargs (it reaches the offloaded task either way)"
            )
        init_kwargs["runtime_env"] = runtime_env
    return init_kwargs, remote_options


def _check_nodes_share_this_host(engine: RayEngine) -> None:
    """ValueError unless every alive node of the connected cluster runs on this host: the
    default store is a directory of this host, which workers elsewhere cannot read."""
    address = engine.address or ""
    hint = (
        f"pass s3_base_path='s3://<bucket>/<prefix>' (or set {S3_BASE_PATH_VARIABLE}), or a path "
        "every node mounts"
    )
    if address.startswith("ray://"):
        raise ValueError(
            f"ray_decorator: no storage is set, and the default one is a directory of this host, "
            f"which the workers of a Ray Client cluster ({address}) cannot read; {hint}"
        )
    ray = _import_ray()
    nodes = [node for node in ray.nodes() if node.get("Alive")]
    driver_node = ray.get_runtime_context().get_node_id()
    here = {node["NodeManagerAddress"] for node in nodes if node["NodeID"] == driver_node}
    elsewhere = sorted({node["NodeManagerAddress"] for node in nodes} - here)
    if elsewhere:
        raise ValueError(
            f"ray_decorator: no storage is set, and the default one is a directory of this host "
            f"({', '.join(sorted(here)) or 'not a node of the cluster'}), which the cluster's nodes "
            f"at {', '.join(elsewhere)} cannot read; {hint}"
        )


# --------------------------------------------------------------------------- ray_decorator


def ray_decorator(
    deps: Iterable[str] | Callable[..., Any] = (),
    outs: Iterable[str] = (),
    ray_address: str | None = None,
    s3_base_path: str | os.PathLike[str] | None = None,
    ray_init_kwargs: dict[str, Any] | None = None,
    ray_remote_kwargs: dict[str, Any] | None = None,
    *,
    storage_options: dict[str, Any] | None = None,
) -> Any:
    """ray-decorator's decorator: run the function on a Ray worker; the paths named in ``deps``
    and ``outs`` stay local.

    - ``deps`` / ``outs``: parameter names, or dotted paths into dicts, dataclasses and
      OmegaConf configs (``"config.data.path"``). Each dep appears on the worker as a local
      path with the same content; each out is an empty directory there, and what the function
      leaves in it replaces the local path once the run succeeded.
    - ``ray_address`` (default ``RAY_ADDRESS``), ``s3_base_path`` (default
      ``RAY_S3_BASE_PATH``), ``ray_init_kwargs``, ``ray_remote_kwargs``: see
      :mod:`zoopipe_ray.offload` and :class:`RayOffload`. ``storage_options`` go to the store's
      fsspec filesystem (``{"client_kwargs": {"endpoint_url": ...}}``, ``{"profile": ...}``).

    Each ``ray_decorator(...)`` has its own engine (``fn.offload.engine``). The wrapper keeps the
    function's name and signature, so ``@hydra.main(...)`` can be stacked above it. The return
    value comes back; an exception comes back with its type and message, the remote traceback
    as its ``__cause__``. ``@ray_decorator`` without arguments works too.

    Example:
        >>> import os, pathlib, tempfile
        >>> from zoopipe_ray import ray_decorator
        >>> here = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (here / "local_data").mkdir(); _ = (here / "local_data" / "a.txt").write_text("hi")
        >>> @ray_decorator(deps=["data_dir"], outs=["output_dir"], ray_remote_kwargs={"num_cpus": 1})
        ... def process_data(data_dir: str, output_dir: str) -> int:
        ...     files = os.listdir(data_dir)
        ...     pathlib.Path(output_dir, "result.txt").write_text("Done!")
        ...     return len(files)
        >>> process_data.__name__, list(__import__("inspect").signature(process_data).parameters)
        ('process_data', ['data_dir', 'output_dir'])
        >>> process_data(data_dir=here / "local_data", output_dir=here / "local_results")  # doctest: +SKIP
        1
        >>> (here / "local_results" / "result.txt").read_text()  # doctest: +SKIP
        'Done!'
    """
    if callable(deps) and not isinstance(deps, (str, bytes)) and not hasattr(deps, "__iter__"):
        return ray_decorator()(deps)  # bare @ray_decorator
    # RayOffload decorates as Offload does: a functools.wraps wrapper calling RayOffload.call.
    return RayOffload(
        deps,
        outs,
        ray_address,
        s3_base_path,
        ray_init_kwargs,
        ray_remote_kwargs,
        storage_options=storage_options,
    )


# --------------------------------------------------------------------------- ray_zen


def ray_zen(
    task: Callable[..., Any] | None = None,
    *,
    deps: Iterable[str] = (),
    outs: Iterable[str] = (),
    ray_address: str | None = None,
    s3_base_path: str | os.PathLike[str] | None = None,
    ray_init_kwargs: dict[str, Any] | None = None,
    ray_remote_kwargs: dict[str, Any] | None = None,
    storage_options: dict[str, Any] | None = None,
    **zen_kwargs: Any,
) -> Any:
    """hydra-zen's ``zen(task)``, run on a Ray worker: the config is instantiated there, so a
    heavy object (a model, a dataset) is never built on the driver.

    ``deps`` and ``outs`` name config fields holding paths (``"data_dir"``, or dotted:
    ``"data.path"``); the others are :func:`ray_decorator`'s. ``zen_kwargs`` are hydra-zen's
    (``pre_call``, ``exclude``, ``unpack_kwargs``, ``resolve_pre_call``, ``run_in_context``,
    ``instantiation_wrapper``). Returns a :class:`RayZen` (a hydra-zen ``Zen``); without
    ``task``, a decorator making one. ``.hydra_main(...)`` runs the Hydra app, as hydra-zen's
    does, and returns a callable giving back the task's return value, so ray-decorator's
    ``ray_zen(task, ...).hydra_main(...)()`` runs the app once too.

    Example:
        >>> from hydra_zen import builds, make_config
        >>> from zoopipe_ray import ray_zen
        >>> def task(model, data_dir: str):
        ...     return f"{model} on {len(open(data_dir + '/x.txt').read())} bytes"
        >>> app = ray_zen(task, deps=["data_dir"])
        >>> app
        ray_zen[task(model, data_dir)](cfg, /)
        >>> import pathlib, tempfile
        >>> data = pathlib.Path(tempfile.mkdtemp()); _ = (data / "x.txt").write_text("abc")
        >>> cfg = make_config(model=builds(dict, kind="bert"), data_dir=str(data))
        >>> app(cfg)  # instantiated and run on a Ray worker  # doctest: +SKIP
        "{'kind': 'bert'} on 3 bytes"
    """
    options = dict(
        deps=deps,
        outs=outs,
        ray_address=ray_address,
        s3_base_path=s3_base_path,
        ray_init_kwargs=ray_init_kwargs,
        ray_remote_kwargs=ray_remote_kwargs,
        storage_options=storage_options,
        **zen_kwargs,
    )
    if task is None:
        return lambda fn: _ray_zen_class()(fn, **options)
    return _ray_zen_class()(task, **options)


def _run_zen(zen: Any, cfg: Any) -> Any:
    """On the worker: hydra-zen's own ``Zen.__call__`` (pre-call hooks, instantiation, the
    task), never RayZen's (which would offload again)."""
    from hydra_zen.wrapper import Zen

    return Zen.__call__(zen, cfg)


class _Returned:
    """What ``RayZen.hydra_main`` returns: the app has run; calling this gives the task's
    return value (of its last run, under ``--multirun``), None when it did not run."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __call__(self) -> Any:
        return self.value

    def __repr__(self) -> str:
        return f"<hydra app finished: returned {self.value!r}>"


_NOT_GIVEN: Any = object()


class _RayZenCalls:
    """hydra-zen's ``Zen`` whose call runs on a Ray worker: ``RayZen``, made by :func:`ray_zen`
    (``RayZen`` subclasses this and hydra-zen's ``Zen``, on first use).

    The driver normalises and validates the config (no instantiation), resolves its
    interpolations on a copy (so ``${hydra:...}`` resolves where Hydra runs), uploads the
    ``deps`` and submits one task; the worker runs hydra-zen's own ``Zen.__call__``:
    pre-call hooks, instantiation and the task. The caller's config is not changed.

    Example:
        >>> from hydra_zen import builds, make_config
        >>> from hydra_zen.wrapper import Zen
        >>> from zoopipe_ray import RayZen, ray_zen
        >>> def task(model, output_dir):
        ...     open(f"{output_dir}/model.txt", "w").write(repr(model))
        >>> app = ray_zen(task, outs=["output_dir"])
        >>> isinstance(app, RayZen) and isinstance(app, Zen)
        True
        >>> app.validate(make_config(model=builds(dict), output_dir="./out"))  # no Ray needed
        >>> app(make_config(model=builds(dict, n=1), output_dir="./out"))  # doctest: +SKIP
    """

    func: Callable[..., Any]
    _resolve: bool

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        deps: Iterable[str] = (),
        outs: Iterable[str] = (),
        ray_address: str | None = None,
        s3_base_path: str | os.PathLike[str] | None = None,
        ray_init_kwargs: dict[str, Any] | None = None,
        ray_remote_kwargs: dict[str, Any] | None = None,
        storage_options: dict[str, Any] | None = None,
        **zen_kwargs: Any,
    ) -> None:
        super().__init__(func, **zen_kwargs)  # type: ignore[call-arg]
        self.deps = _field_names("deps", deps)
        self.outs = _field_names("outs", outs)
        self.offload: RayOffload | None = RayOffload(
            [f"cfg.{name}" for name in self.deps],
            [f"cfg.{name}" for name in self.outs],
            ray_address,
            s3_base_path,
            ray_init_kwargs,
            ray_remote_kwargs,
            storage_options=storage_options,
        )
        self._returned: Any = None

    def __repr__(self) -> str:
        return "ray_" + super().__repr__()

    def __getstate__(self) -> dict[str, Any]:
        # What the worker needs: hydra-zen's state, not the engine nor the last result.
        state = dict(self.__dict__)
        state.pop("offload", None)
        state.pop("_returned", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.offload = None
        self._returned = None

    def __call__(self, __cfg: Any) -> Any:
        """Run the task on a Ray worker with ``cfg`` instantiated there; return its value."""
        from omegaconf import OmegaConf

        if self.offload is None:
            raise RuntimeError("a RayZen sent to a worker runs there through hydra-zen's Zen.__call__")
        cfg = self._normalize_cfg(__cfg)  # type: ignore[attr-defined]
        self.validate(cfg)  # type: ignore[attr-defined]
        cfg = copy.deepcopy(cfg)  # the caller's config is never changed
        if self._resolve:
            OmegaConf.resolve(cfg)  # here, where Hydra's resolvers (${hydra:...}) work
        for name in (*self.deps, *self.outs):
            value = OmegaConf.select(cfg, name, default=_NOT_GIVEN)
            if value is _NOT_GIVEN or value is None:
                raise ValueError(
                    f"ray_zen({getattr(self.func, '__name__', self.func)!s}): the config has no path at "
                    f"{name!r} (named in deps or outs); its fields are {', '.join(map(str, cfg))}"
                )
        self._returned = self.offload.call(_run_zen, self, cfg)
        return self._returned

    def hydra_main(
        self,
        config_path: str | None = _NOT_GIVEN,
        config_name: str | None = None,
        version_base: str | None = _NOT_GIVEN,
        execution_whitelist: Any = None,
    ) -> Callable[[], Any]:
        """Run the Hydra app (``hydra.main(...)(self)()``, as hydra-zen's ``hydra_main``), each
        task call on a Ray worker; return a callable giving the task's return value (so
        ray-decorator's ``.hydra_main(...)()`` works: the app still runs once)."""
        kwargs: dict[str, Any] = {"config_name": config_name}
        if config_path is not _NOT_GIVEN:
            kwargs["config_path"] = config_path
        if version_base is not _NOT_GIVEN:
            kwargs["version_base"] = version_base
        if execution_whitelist is not None:
            kwargs["execution_whitelist"] = execution_whitelist
        self._returned = None
        super().hydra_main(**kwargs)  # type: ignore[misc]
        return _Returned(self._returned)


@functools.cache
def _ray_zen_class() -> type:
    """RayZen, made on first use so that importing this module does not import hydra-zen."""
    try:
        from hydra_zen.wrapper import Zen
    except ImportError as exc:
        raise ImportError(_MISSING_HYDRA_ZEN) from exc

    cls = type("RayZen", (_RayZenCalls, Zen), {"__module__": __name__, "__doc__": _RayZenCalls.__doc__})
    cls.__qualname__ = "RayZen"
    return cls


def _field_names(kind: str, names: Iterable[str]) -> tuple[str, ...]:
    if isinstance(names, str):
        raise TypeError(f"{kind} is a list of config fields, e.g. {kind}=[{names!r}], not a string")
    return tuple(names)


def __getattr__(name: str) -> Any:
    if name == "RayZen":  # made on first use: importing this module does not import hydra-zen
        cls = _ray_zen_class()
        globals()["RayZen"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
