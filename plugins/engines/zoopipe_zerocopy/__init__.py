"""Zero-copy model sharing for zoopipe: N workers on a machine hold one copy of a PyTorch
model's weights (``pip install "zoopipe-core[zerocopy]"``).

``ModelWrapper.from_model(model_or_pipeline)`` shares the weights once (Ray's object store when
Ray is initialised, else shared memory, or an engine's ``share``); ``wrapper.load()`` in each
worker maps them copy-on-write. Importing this package does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ModelWrapper": "zoopipe_zerocopy.wrapper",
    "RemoteModel": "zoopipe_zerocopy.wrapper",
    "UnshareableModule": "zoopipe_zerocopy.torchscript",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'zoopipe_zerocopy' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
