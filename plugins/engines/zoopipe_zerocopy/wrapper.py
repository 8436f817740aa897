"""ModelWrapper: one copy of a model's weights per machine, loaded by every worker there.

Example:
    >>> import torch
    >>> from zoopipe_core.engines import MultiProcessEngine
    >>> from zoopipe_zerocopy import ModelWrapper
    >>> model = torch.nn.Linear(4, 2)
    >>> def predict(wrapper, rows):
    ...     with torch.no_grad():
    ...         return wrapper.load()(torch.tensor(rows)).tolist()
    >>> with MultiProcessEngine(max_workers=2) as engine:
    ...     wrapper = ModelWrapper.from_model(model, engine=engine)
    ...     remote = engine.submit(predict, wrapper, [[1.0, 2.0, 3.0, 4.0]]).result()
    >>> with torch.no_grad():
    ...     remote == model(torch.tensor([[1.0, 2.0, 3.0, 4.0]])).tolist()
    True
"""

from __future__ import annotations

import collections
import copy
import threading
import weakref
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch

from zoopipe_core.engines import Engine, SharedMemoryRef, SharedRef
from zoopipe_core.plugins import DEFAULT_ENGINE
from zoopipe_zerocopy import cow
from zoopipe_zerocopy.placement import Placed, place, ray_is_initialized
from zoopipe_zerocopy.split import find_models, join, split

Mode = Literal["actor", "task"]


class _Mapping:
    """Shared weights mapped in this process: the private views of its storages and, from Ray,
    the object as received (which keeps it in use, so Ray never frees or reuses its pages while
    a loaded tensor reads them). Each loaded tensor holds it; it goes when the last of them does."""

    def __init__(self, received: Any, views: list[memoryview]):
        self.received = received
        self.views = views

    def buffers(self) -> list[np.ndarray]:
        pinned: list[np.ndarray] = []
        for view in self.views:
            array = np.frombuffer(view, dtype=np.uint8).view(_Pinned)
            array.mapping = self
            pinned.append(array)
        return pinned


class _Pinned(np.ndarray):
    """A storage's bytes that keep their :class:`_Mapping` alive (a tensor keeps its buffer)."""

    mapping: _Mapping


# By the key of their SharedRef: every load() in this process of the same weights reads one
# private mapping of the shared pages, while any tensor loaded from it lives.
_mapped: weakref.WeakValueDictionary[str, _Mapping] = weakref.WeakValueDictionary()
_mapped_lock = threading.Lock()
# The models of pipelines loaded by mode="task" calls in this process, by the same key, the most
# recently called last. A pool worker lives on after a wrapper is released, and its models keep
# their shared pages in use: only the last TASK_MODELS_KEPT pipelines stay loaded.
_task_models: collections.OrderedDict[str, dict[str, Any]] = collections.OrderedDict()
TASK_MODELS_KEPT = 4


class ModelWrapper:
    """A model or pipeline whose weights are shared once, to be loaded by many workers.

    ``ModelWrapper.from_model(model_or_pipeline)`` splits the object into a small skeleton and
    its weights, and shares the weights once: in Ray's object store when Ray is initialised
    (one copy per node), else in this machine's shared memory, or with ``engine.share`` when
    ``engine=`` names an engine. The wrapper pickles small: pass it to Ray actors (Ray Data's
    ``fn_constructor_kwargs``), Ray tasks, ``ParallelMap`` or ``PipeManager`` work. In a worker,
    :meth:`load` returns the pipeline with every tensor over the shared pages, mapped
    copy-on-write: outputs are the original's bit for bit, and an in-place write (training,
    ``load_state_dict``) touches a private copy of the pages it writes, never what other
    workers see.

    A pipeline is any object holding ``torch.nn.Module`` objects (TorchScript ones too) as
    attributes, private attributes, or inside dicts and lists; its other attributes are kept
    and its properties are never evaluated. ``model_attr_names`` shares only those attributes'
    models. Tied weights are stored once and come back tied.

    ``mode="task"`` (or :meth:`for_tasks`) is for ad-hoc remote calls: :meth:`load` on the
    driver returns the pipeline with each model replaced by a stand-in whose ``method_names``
    (default ``("__call__",)``) run as tasks on the engine and return their result.

    Example:
        >>> import torch
        >>> from zoopipe_zerocopy import ModelWrapper
        >>> class Pipeline:
        ...     def __init__(self):
        ...         self.encoder = torch.nn.Linear(3, 3)
        ...         self.scale = 2.0
        ...     def __call__(self, x):
        ...         return self.encoder(x) * self.scale
        >>> pipeline = Pipeline()
        >>> wrapper = ModelWrapper.from_model(pipeline)  # Ray's object store if Ray is up, else /dev/shm
        >>> wrapper.models, wrapper.nbytes
        (['encoder'], 48)
        >>> x = torch.ones(1, 3)
        >>> torch.equal(wrapper.load()(x), pipeline(x))
        True
        >>> wrapper.release()
    """

    def __init__(
        self,
        skeleton: bytes,
        ref: SharedRef,
        nbytes: int,
        models: Sequence[str],
        mode: Mode = "actor",
        method_names: Sequence[str] = (),
        where: str = "",
    ) -> None:
        self._skeleton = skeleton
        self._ref = ref
        self._nbytes = nbytes
        self._models = tuple(models)
        self._mode: Mode = mode
        self._method_names = tuple(method_names)
        self._where = where
        self._placed: Placed | None = None  # on the driver that shared the weights only

    @classmethod
    def from_model(
        cls,
        model_or_pipeline: Any,
        mode: Mode = "actor",
        model_attr_names: Sequence[str] | None = None,
        method_names: Sequence[str] | None = None,
        engine: Engine | str | None = None,
    ) -> ModelWrapper:
        """Share the weights of ``model_or_pipeline`` once and return the wrapper to load them.

        ``engine=None``: Ray's object store when Ray is initialised, else shared memory on this
        machine (freed by :meth:`release`, at exit, or by the resource tracker if this process
        dies). ``engine=`` an engine or its name: that engine's ``share`` (an engine made here
        from a name is shut down by :meth:`release`). ``mode="task"`` runs the models' methods
        as tasks on that engine (``engine=None``: Ray's when initialised, else the default).
        """
        if mode not in ("actor", "task"):
            raise ValueError(f"mode must be 'actor' or 'task', got {mode!r}")
        if method_names is not None and mode != "task":
            raise ValueError(
                "method_names chooses the methods that run as remote tasks, so it needs "
                "mode='task'; in mode='actor' the worker calls the loaded pipeline itself"
            )
        if isinstance(method_names, str):
            method_names = (method_names,)
        models = find_models(model_or_pipeline, model_attr_names)
        parts = split(model_or_pipeline, model_attr_names)
        if mode == "task" and engine is None:
            # By name: the engine is made here, so release() shuts it down.
            engine = "ray" if ray_is_initialized() else DEFAULT_ENGINE
        placed = place(parts.storages, engine)
        wrapper = cls(
            parts.skeleton,
            placed.ref,
            parts.nbytes,
            sorted(models),
            mode,
            tuple(method_names or ("__call__",)) if mode == "task" else (),
            placed.where,
        )
        if mode == "task":
            placed.original = model_or_pipeline
        wrapper._placed = placed
        return wrapper

    @classmethod
    def for_tasks(
        cls,
        model_or_pipeline: Any,
        method_names: Sequence[str] | None = None,
        engine: Engine | str | None = None,
    ) -> Any:
        """``from_model(..., mode="task").load()``: the pipeline with its models' methods run as
        tasks, ready to call."""
        return cls.from_model(model_or_pipeline, mode="task", method_names=method_names, engine=engine).load()

    @property
    def models(self) -> list[str]:
        """Where the shared models are in the pipeline (``""``: the wrapped object is the model)."""
        return list(self._models)

    @property
    def nbytes(self) -> int:
        """The size of the shared weights."""
        return self._nbytes

    # ------------------------------------------------------------------ loading

    def load(self, device: str | torch.device | None = None) -> Any:
        """The pipeline over the shared weights (``mode="actor"``), or, in ``mode="task"``, the
        pipeline whose models run their methods as remote tasks.

        On the CPU nothing is copied; ``device="cuda"`` (or another) moves the models there.
        Each call returns a new pipeline object over the same shared pages.
        """
        if self._mode == "task":
            return self._task_pipeline()
        pipeline = join(self._skeleton, self._mapped_storages())
        if device is not None and torch.device(device).type != "cpu":
            for model in find_models(pipeline).values():
                model.to(device)
        return pipeline

    def _mapped_storages(self) -> list[np.ndarray]:
        key = self._ref.key
        with _mapped_lock:
            mapping = _mapped.get(key)
            if mapping is None:
                try:
                    arrays = self._ref.get()
                except LookupError as exc:
                    raise LookupError(
                        f"{self!r}: its shared weights are gone (released, or their engine shut "
                        "down). Wrap the model again with ModelWrapper.from_model"
                    ) from exc
                # Ray reuses a freed object's pages for new objects: what a worker received stays
                # in use while its tensors read the pages. A shared-memory block is never reused:
                # the private views alone keep its pages mapped.
                received = None if isinstance(self._ref, SharedMemoryRef) else arrays
                try:
                    mapping = _mapped[key] = _Mapping(received, cow.private_views(arrays))
                except cow.NotSharedMemory as exc:
                    raise RuntimeError(
                        f"{self!r}: the weights reached this process as a private copy, not as "
                        f"shared memory ({exc}), so they cannot be shared with the other workers "
                        "here. Share them with Ray's object store (Ray initialised, engine=None "
                        "or 'ray') or the multiprocess engine ('multiprocess')"
                    ) from exc
            return mapping.buffers()

    def _task_pipeline(self) -> Any:
        if self._placed is None or self._placed.engine is None:
            raise RuntimeError(
                f"{self!r} loads on the driver that wrapped the model: its load() returns "
                "stand-ins that submit tasks there. To load the weights in a worker, wrap the "
                "model with mode='actor'"
            )
        engine = self._placed.engine
        stand_ins = {path: RemoteModel(self, path, self._method_names, engine) for path in self._models}
        if "" in stand_ins:
            return stand_ins[""]
        # A shallow copy of the caller's pipeline: its models become stand-ins, the rest is kept.
        return _replace_models(self._placed.original, stand_ins)

    def call(self, path: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """Run ``method`` of the model at ``path`` (``""``: the wrapped module itself) on the
        shared weights in this process, under ``torch.no_grad()``: the task a ``mode="task"``
        stand-in submits. The pipeline is loaded once per process.

        Example:
            >>> import torch
            >>> wrapper = ModelWrapper.from_model(torch.nn.Identity(), mode="task", engine="multiprocess")
            >>> wrapper.call("", "forward", torch.ones(1)).tolist()
            [1.0]
            >>> wrapper.release()
        """
        key = self._ref.key
        with _mapped_lock:
            models = _task_models.get(key)
            if models is not None:
                _task_models.move_to_end(key)
        if models is None:
            loader = ModelWrapper(
                self._skeleton, self._ref, self._nbytes, self._models, "actor", (), self._where
            )
            models = find_models(loader.load())
            with _mapped_lock:
                models = _task_models.setdefault(key, models)
                while len(_task_models) > TASK_MODELS_KEPT:
                    _task_models.popitem(last=False)
        with torch.no_grad():
            return getattr(models[path], method)(*args, **kwargs)

    # ------------------------------------------------------------------ lifetime

    def release(self) -> None:
        """Free the shared weights (on the driver that wrapped the model; a no-op elsewhere).

        Workers that loaded them keep their mapping until they drop the pipeline; a later
        load() raises LookupError.
        """
        placed, self._placed = self._placed, None
        if placed is not None:
            placed.release()

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            type(self),
            (
                self._skeleton,
                self._ref,
                self._nbytes,
                self._models,
                self._mode,
                self._method_names,
                self._where,
            ),
        )

    def __repr__(self) -> str:
        return (
            f"<ModelWrapper mode={self._mode!r} models={list(self._models)!r} {self._nbytes} bytes "
            f"in {self._where}>"
        )


def _replace_models(pipeline: Any, stand_ins: dict[str, Any]) -> Any:
    result = copy.copy(pipeline)
    for path, stand_in in stand_ins.items():
        name, _, item = path.partition(".")
        if not item:
            setattr(result, name, stand_in)
            continue
        container = copy.copy(getattr(result, name))
        container[int(item) if isinstance(container, list) else item] = stand_in
        setattr(result, name, container)
    return result


class RemoteModel:
    """Stands in for one model of a ``mode="task"`` wrapper: calling one of its methods runs it
    as a task on the engine, on the shared weights, and returns the result.

    Example:
        >>> import torch
        >>> from zoopipe_core.engines import MultiProcessEngine
        >>> from zoopipe_zerocopy import ModelWrapper
        >>> with MultiProcessEngine(max_workers=1) as engine:
        ...     remote = ModelWrapper.for_tasks(torch.nn.Identity(), engine=engine)
        ...     remote(torch.ones(2)).tolist()
        [1.0, 1.0]
    """

    def __init__(self, wrapper: ModelWrapper, path: str, method_names: Sequence[str], engine: Engine):
        self._wrapper = wrapper
        self._path = path
        self._method_names = tuple(method_names)
        self._engine = engine

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._run("__call__", args, kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self._method_names:
            raise AttributeError(
                f"{name!r} of the model at {self._path or 'the top'} does not run remotely: "
                f"method_names={list(self._method_names)!r}"
            )
        return lambda *args, **kwargs: self._run(name, args, kwargs)

    def _run(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if method not in self._method_names:
            raise AttributeError(
                f"{method!r} does not run remotely: method_names={list(self._method_names)!r}"
            )
        return self._engine.submit(self._wrapper.call, self._path, method, *args, **kwargs).result()

    def __repr__(self) -> str:
        return f"<RemoteModel {self._path or 'model'} methods={list(self._method_names)!r}>"
