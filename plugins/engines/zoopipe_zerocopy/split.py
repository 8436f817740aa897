"""Split a model or pipeline into a small skeleton and its tensors' bytes, and join them again.

The skeleton is the pipeline pickled (with cloudpickle, so classes defined in a script travel)
with every tensor storage of the chosen models replaced by a reference: its index in the list of
storages. Pickle's memo keeps identities, so a weight tied between two modules is one storage and
one Parameter, and comes back tied; tensors that view one storage come back viewing one storage.
Storages are bytes of any dtype (bfloat16 included): a tensor is rebuilt over them with its dtype,
offset, shape and strides, so outputs are bit for bit the original's. TorchScript modules cannot
be pickled; :mod:`zoopipe_zerocopy.torchscript` saves them without their tensors.

Properties are never evaluated (pickle reads an object's ``__dict__`` and ``__reduce_ex__``), and
every non-model attribute is kept.

Example:
    >>> import torch
    >>> layer = torch.nn.Linear(3, 2)
    >>> parts = split(layer)
    >>> len(parts.storages), [s.nbytes for s in parts.storages]
    (2, [24, 8])
    >>> rebuilt = join(parts.skeleton, [bytearray(s) for s in parts.storages])
    >>> torch.equal(rebuilt.weight, layer.weight)
    True
"""

from __future__ import annotations

import dataclasses
import io
import pickle
from collections.abc import Iterable, Sequence
from typing import Any

import cloudpickle
import numpy as np
import torch

from zoopipe_zerocopy import torchscript

_STORAGE = "storage"
_SCRIPT = "script"


@dataclasses.dataclass
class Parts:
    """A pipeline split for sharing: ``skeleton`` (pickle bytes, no weights) and ``storages``
    (one uint8 array per distinct tensor storage, viewing the model's own memory).

    Example:
        >>> import torch
        >>> parts = split(torch.nn.Linear(4, 4, bias=False))
        >>> parts.nbytes, parts.storages[0].dtype
        (64, dtype('uint8'))
    """

    skeleton: bytes
    storages: list[np.ndarray]

    @property
    def nbytes(self) -> int:
        return sum(storage.nbytes for storage in self.storages)


def find_models(obj: Any, names: Sequence[str] | None = None) -> dict[str, Any]:
    """The ``torch.nn.Module`` objects ``obj`` holds, by the path that reaches them.

    ``obj`` itself when it is a module; else its attributes (private ones too), and modules
    inside dicts, lists and tuples in them, one level of containers deep. ``names`` keeps only
    those attributes, and each must hold a module. Properties are never evaluated: only the
    instance ``__dict__`` is read.

    Example:
        >>> import torch
        >>> class Pipeline:
        ...     def __init__(self):
        ...         self.encoder = torch.nn.Linear(2, 2)
        ...         self._heads = {"a": torch.nn.ReLU()}
        ...         self.threshold = 0.5
        ...     @property
        ...     def broken(self):
        ...         raise AssertionError("never evaluated")
        >>> sorted(find_models(Pipeline()))
        ['_heads.a', 'encoder']
    """
    if isinstance(obj, torch.nn.Module):
        if names:
            raise ValueError(
                f"model_attr_names={list(names)!r} names attributes of a pipeline, but the object "
                f"given is itself a {type(obj).__name__} (a module): leave model_attr_names=None"
            )
        return {"": obj}
    attributes = getattr(obj, "__dict__", None)
    if attributes is None:
        raise TypeError(
            f"cannot find models in a {type(obj).__name__}: pass a torch.nn.Module or an object "
            "that holds modules as attributes"
        )
    found: dict[str, Any] = {}
    for name, value in attributes.items():
        if names is not None and name not in names:
            continue
        found.update(_modules_in(name, value))
    if names is not None:
        missing = [name for name in names if not any(path.split(".")[0] == name for path in found)]
        if missing:
            raise ValueError(
                f"model_attr_names: {type(obj).__name__} has no torch.nn.Module at "
                f"{', '.join(map(repr, missing))}; its attributes are {sorted(attributes)}"
            )
    if not found:
        raise ValueError(
            f"{type(obj).__name__} holds no torch.nn.Module in its attributes (looked in "
            f"{sorted(attributes)}, and in the dicts and lists among them): nothing to share"
        )
    return found


def _modules_in(path: str, value: Any) -> dict[str, Any]:
    if isinstance(value, torch.nn.Module):
        return {path: value}
    if isinstance(value, dict):
        return {f"{path}.{key}": item for key, item in value.items() if isinstance(item, torch.nn.Module)}
    if isinstance(value, (list, tuple)):
        return {f"{path}.{i}": item for i, item in enumerate(value) if isinstance(item, torch.nn.Module)}
    return {}


def split(obj: Any, model_attr_names: Sequence[str] | None = None) -> Parts:
    """Split ``obj`` (a module or a pipeline holding modules) into a skeleton and storages.

    Only the storages of the models :func:`find_models` finds are taken out; any other tensor
    stays inside the skeleton. No tensor is copied: each storage is a view of the model's memory.
    """
    models = find_models(obj, model_attr_names)
    shared: dict[tuple[int, int], int] = {}
    storages: list[np.ndarray] = []
    for tensor in _tensors_of(models.values()):
        key = _storage_key(tensor.untyped_storage())
        if key not in shared:
            shared[key] = len(storages)
            storages.append(_bytes_of(tensor.untyped_storage()))
    buffer = io.BytesIO()
    pickler = _SkeletonPickler(buffer, shared, models.values())
    pickler.dump(obj)
    return Parts(buffer.getvalue(), storages)


def join(skeleton: bytes, storages: Sequence[Any]) -> Any:
    """The pipeline again, its tensors over ``storages`` (buffers, in :func:`split`'s order)."""
    untyped = [_untyped_over(buffer) for buffer in storages]
    return _SkeletonUnpickler(io.BytesIO(skeleton), untyped).load()


def _tensors_of(models: Iterable[Any]) -> Iterable[torch.Tensor]:
    for model in models:
        if torchscript.is_script(model):
            yield from torchscript.tensors(model)
            continue
        for module in model.modules():
            if torchscript.is_script(module):
                yield from torchscript.tensors(module)
                continue
            yield from module.parameters(recurse=False)
            yield from module.buffers(recurse=False)


def _storage_key(storage: Any) -> tuple[int, int]:
    if storage.device.type != "cpu":
        raise ValueError(
            f"the model's tensors are on {storage.device}: wrap a model on the CPU "
            "(model.cpu()), and choose the device in wrapper.load(device=...)"
        )
    return (storage.data_ptr(), storage.nbytes())


def _bytes_of(storage: Any) -> np.ndarray:
    if storage.nbytes() == 0:
        return np.empty(0, dtype=np.uint8)
    return torch.empty(0, dtype=torch.uint8).set_(storage).numpy()


def _untyped_over(buffer: Any) -> Any:
    if memoryview(buffer).nbytes == 0:
        return torch.UntypedStorage(0)
    return torch.frombuffer(buffer, dtype=torch.uint8).untyped_storage()


class _SkeletonPickler(cloudpickle.Pickler):
    def __init__(self, file: io.BytesIO, shared: dict[tuple[int, int], int], models: Iterable[Any]):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._shared = shared
        self._scripts: dict[int, Any] = {}
        for model in models:
            for module in [model] if torchscript.is_script(model) else model.modules():
                if torchscript.is_script(module):
                    self._scripts[id(module)] = module

    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, torch.storage.TypedStorage):
            # untyped() would warn that TypedStorage is deprecated; pickling tensors makes them.
            index = self._shared.get(_storage_key(obj._untyped_storage))  # noqa: SLF001
            if index is not None:
                return (_STORAGE, index, obj.dtype)
            return None
        if isinstance(obj, torch.UntypedStorage):
            index = self._shared.get(_storage_key(obj))
            return None if index is None else (_STORAGE, index, None)
        if id(obj) in self._scripts:
            return (_SCRIPT, *torchscript.strip(obj, self._shared))
        return None


class _SkeletonUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, storages: list[Any]):
        super().__init__(file)
        self._storages = storages

    def persistent_load(self, pid: Any) -> Any:
        kind = pid[0]
        if kind == _STORAGE:
            _, index, dtype = pid
            untyped = self._storages[index]
            if dtype is None:
                return untyped
            return torch.storage.TypedStorage(wrap_storage=untyped, dtype=dtype, _internal=True)
        if kind == _SCRIPT:
            return torchscript.restore(pid[1], pid[2], self._storages)
        raise pickle.UnpicklingError(f"unknown persistent id {kind!r} in a zoopipe_zerocopy skeleton")
