"""Path syncers: copy local files and directories to URLs and back, by content hash.

Example:
    >>> from zoopipe_core.syncers import LocalSyncer, Syncer
    >>> issubclass(LocalSyncer, Syncer)
    True
"""

from zoopipe_core.syncers.base import Syncer, content_hash, file_hash
from zoopipe_core.syncers.local import LocalSyncer

__all__ = ["LocalSyncer", "Syncer", "content_hash", "file_hash"]
