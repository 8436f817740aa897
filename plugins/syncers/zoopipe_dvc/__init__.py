"""DVC for zoopipe: a ``dvc`` syncer whose content store is the DVC repository's own remote, in
DVC 3's layout, so after an offloaded run ``dvc push`` has nothing new to upload
(`pip install "zoopipe-core[dvc]"`). Importing this package does not import dvc.

Example:
    >>> import zoopipe_dvc
    >>> zoopipe_dvc.__all__
    ['DvcRemote', 'DvcRemoteError', 'DvcSyncer']
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {name: "zoopipe_dvc.syncer" for name in ("DvcRemote", "DvcRemoteError", "DvcSyncer")}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'zoopipe_dvc' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
