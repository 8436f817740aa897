"""Path syncers: copy local files and directories to URLs and back, by content hash.

A syncer plugin builds on these public names: :class:`Syncer` (the contract), ``content_hash``
and ``file_hash`` (what every syncer compares), ``url_path`` (a URL's path in its filesystem),
and the local side of an atomic copy: ``temporary_beside``, ``swap_in``, ``remove_path``.

Example:
    >>> from zoopipe_core.syncers import LocalSyncer, Syncer
    >>> issubclass(LocalSyncer, Syncer)
    True
"""

from zoopipe_core.syncers.base import Syncer, content_hash, file_hash, url_path
from zoopipe_core.syncers.hashing import HashCache, md5_file
from zoopipe_core.syncers.local import (
    LocalSyncer,
    copy_atomically,
    path_of_url,
    remove_path,
    swap_in,
    temporary_beside,
)
from zoopipe_core.syncers.manifest import DIR_SUFFIX, FileEntry, Manifest
from zoopipe_core.syncers.store import ContentStore, StorageError, link_or_copy, redacted

__all__ = [
    "DIR_SUFFIX",
    "ContentStore",
    "FileEntry",
    "HashCache",
    "LocalSyncer",
    "Manifest",
    "StorageError",
    "Syncer",
    "content_hash",
    "copy_atomically",
    "file_hash",
    "link_or_copy",
    "md5_file",
    "path_of_url",
    "redacted",
    "remove_path",
    "swap_in",
    "temporary_beside",
    "url_path",
]
