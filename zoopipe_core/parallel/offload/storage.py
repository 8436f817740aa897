"""Which content store an offloaded run uses: from a URL, a path, a DVC remote, or the default."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from zoopipe_core.installers.host_install import cache_dir
from zoopipe_core.syncers import ContentStore

#: Environment variable naming the default store of offloaded runs.
STORAGE_VARIABLE = "ZOOPIPE_OFFLOAD_STORAGE"


def open_store(
    storage: str | os.PathLike[str] | ContentStore | None, storage_options: dict[str, Any] | None = None
) -> ContentStore:
    """The content store ``storage`` names, through the syncer registered for its scheme.

    None: ``ZOOPIPE_OFFLOAD_STORAGE``, else ``<zoopipe cache dir>/offload-store`` on this host.

    Example:
        >>> open_store("/tmp/offload-store")
        ContentStore('file:///tmp/offload-store')
    """
    if isinstance(storage, ContentStore):
        if storage_options:
            raise ValueError("storage_options go with a storage URL; this ContentStore has its own")
        return storage
    if storage is None:
        storage = os.environ.get(STORAGE_VARIABLE) or cache_dir() / "offload-store"
    text = os.fspath(storage)
    if text == "dvc":  # the DVC repository's default remote
        text = "dvc://"
    elif "://" not in text:
        text = Path(text).absolute().as_uri()
    from zoopipe_core.plugins import get_syncer_class_for_url

    syncer = get_syncer_class_for_url(text)
    return syncer.content_store(text, **(storage_options or {}))
