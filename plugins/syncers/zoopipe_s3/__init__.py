"""S3 for zoopipe: s3:// URLs for every file adapter and an S3 path syncer
(`pip install "zoopipe-core[s3]"`). Importing this package does not import s3fs or boto.

Example:
    >>> import sys, zoopipe_s3
    >>> zoopipe_s3.__all__
    ['S3Syncer', 'S3Upload']
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"S3Syncer": "zoopipe_s3.syncer", "S3Upload": "zoopipe_s3.upload"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'zoopipe_s3' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
