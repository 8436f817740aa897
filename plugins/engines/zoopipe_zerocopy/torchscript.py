"""TorchScript modules shared without a private copy of their tensors per worker.

A ScriptModule cannot be pickled: :func:`strip` saves it with ``torch.jit.save`` while every
parameter and buffer is swapped for an empty tensor (its own tensors are put back at once), and
records where each tensor's bytes are among the shared storages. :func:`restore` loads the
archive and points each tensor at its shared storage in place, so the compiled graph reads the
shared memory. Tensors baked into the graph as constants (``torch.jit.trace`` does that to a
tensor the traced code captures) cannot be pointed elsewhere: such a module is refused with the
names of its constants, never copied per worker in silence.

Example:
    >>> import torch
    >>> from zoopipe_zerocopy.split import join, split
    >>> scripted = torch.jit.script(torch.nn.Linear(4, 2))
    >>> loaded = join(*vars(split(scripted)).values())
    >>> x = torch.ones(1, 4)
    >>> torch.equal(loaded(x), scripted(x)), is_script(loaded)
    (True, True)
"""

from __future__ import annotations

import contextlib
import io
import warnings
import zipfile
from collections.abc import Iterator
from typing import Any

import torch

#: Graph constants above this many bytes make a module unshareable (small ones, such as a
#: scalar tensor in the code, are copied with the code).
CONSTANTS_LIMIT = 1 << 20


class UnshareableModule(ValueError):
    """A TorchScript module holds tensors that cannot be shared between processes.

    Example:
        >>> import warnings
        >>> from zoopipe_zerocopy.split import split
        >>> class Lookup(torch.nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.table = torch.zeros(600, 600)  # a plain attribute, not a buffer
        ...     def forward(self, x):
        ...         return x @ self.table
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     traced = torch.jit.trace(Lookup(), torch.zeros(1, 600))  # bakes the table in
        >>> try:
        ...     split(traced)
        ... except UnshareableModule as exc:
        ...     print(str(exc)[:63])
        the TorchScript module Lookup keeps 1.4 MiB of tensors as graph
    """


def is_script(module: Any) -> bool:
    return isinstance(module, torch.jit.ScriptModule)


def tensors(module: Any) -> Iterator[torch.Tensor]:
    """Every parameter and buffer of ``module`` and its submodules, tied ones once per name."""
    for _, tensor in _named_tensors(module):
        yield tensor


def _named_tensors(module: Any) -> list[tuple[str, torch.Tensor]]:
    named = [*module.named_parameters(), *module.named_buffers()]
    return [(name, tensor) for name, tensor in named if tensor is not None]


def strip(module: Any, shared: dict[tuple[int, int], int]) -> tuple[bytes, list[tuple[Any, ...]]]:
    """The module saved without its tensors, and for each tensor (qualified name, storage index,
    offset, shape, strides, dtype). ``shared`` maps a storage's (address, size) to its index."""
    table = []
    for name, tensor in _named_tensors(module):
        storage = tensor.untyped_storage()
        index = shared[(storage.data_ptr(), storage.nbytes())]
        table.append(
            (name, index, tensor.storage_offset(), tuple(tensor.shape), tensor.stride(), tensor.dtype)
        )
    buffer = io.BytesIO()
    with _emptied(module), _quiet_deprecation():
        torch.jit.save(module, buffer)
    archive = buffer.getvalue()
    _refuse_large_constants(archive, getattr(module, "original_name", type(module).__name__))
    return archive, table


@contextlib.contextmanager
def _emptied(module: Any) -> Iterator[None]:
    originals = [
        (tensor, tensor.untyped_storage(), tensor.storage_offset(), tensor.shape, tensor.stride())
        for _, tensor in _named_tensors(module)
    ]
    with torch.no_grad():
        try:
            for tensor, *_ in originals:
                tensor.set_(torch.empty(0, dtype=tensor.dtype).untyped_storage(), 0, (0,), (1,))
            yield
        finally:
            for tensor, storage, offset, shape, stride in originals:
                tensor.set_(storage, offset, shape, stride)


@contextlib.contextmanager
def _quiet_deprecation() -> Iterator[None]:
    """torch 2.13 deprecates jit.save and jit.load; the caller chose TorchScript already, and
    saving it for them should not warn once per worker."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*torch\.jit\.")
        yield


def _refuse_large_constants(archive: bytes, name: str) -> None:
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        data = [
            info for info in zipped.infolist() if "/constants/" in info.filename or "/data/" in info.filename
        ]
        size = sum(info.file_size for info in data)
    if size > CONSTANTS_LIMIT:
        raise UnshareableModule(
            f"the TorchScript module {name} keeps {size / 2**20:.1f} MiB of tensors as graph "
            "constants, not as parameters or buffers: every worker would load its own copy of "
            "them, so it cannot be shared. Register those tensors as parameters or buffers "
            "(register_buffer) before scripting or tracing, or share the eager module instead"
        )


def restore(archive: bytes, table: list[tuple[Any, ...]], storages: list[Any]) -> Any:
    """Load a stripped module and point each of its tensors at its shared storage."""
    with _quiet_deprecation():
        module = torch.jit.load(io.BytesIO(archive), map_location="cpu")
    by_name = dict(_named_tensors(module))
    with torch.no_grad():
        for name, index, offset, shape, stride, dtype in table:
            tensor = by_name[name]
            typed = torch.storage.TypedStorage(wrap_storage=storages[index], dtype=dtype, _internal=True)
            tensor.set_(typed, offset, shape, stride)
    return module
