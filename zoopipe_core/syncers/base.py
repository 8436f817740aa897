"""The syncer contract, and the content hash every syncer compares.

A syncer copies a local file or directory to a URL and back. Copies are atomic (the final name
holds the old content or the new, never a mix) and skipped when the content is already there.
"""

from __future__ import annotations

import abc
import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from zoopipe_core.syncers.store import ContentStore

_CHUNK = 1 << 20


def file_hash(path: str | os.PathLike[str]) -> str:
    """The sha256 hex digest of a file's bytes (what ``sha256sum`` prints)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def content_hash(path: str | os.PathLike[str]) -> str:
    """The sha256 of a file's bytes, or of a directory's files and their relative paths.

    A directory hashes like the output of ``sha256sum`` over its files sorted by relative path,
    so renaming, adding or changing any file changes it; empty directories do not count.

    Example:
        >>> import pathlib, tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "a.txt").write_text("hello\\n")
        >>> content_hash(folder / "a.txt")[:12]
        '5891b5b522d5'
        >>> content_hash(folder) == content_hash(folder)
        True
    """
    root = Path(path)
    if not root.is_dir():
        return file_hash(root)
    manifest = hashlib.sha256()
    files = sorted(p for p in root.rglob("*") if p.is_file())
    for file in files:
        manifest.update(f"{file_hash(file)}  {file.relative_to(root).as_posix()}\n".encode())
    return manifest.hexdigest()


def url_path(url: str | os.PathLike[str]) -> str:
    """The path of ``url`` inside its filesystem, as fsspec names it (the scheme dropped).

    Example:
        >>> url_path("memory://bucket/runs/data.csv")
        '/bucket/runs/data.csv'
        >>> url_path("file:///tmp/data.csv")
        '/tmp/data.csv'
    """
    from fsspec.core import strip_protocol

    return strip_protocol(os.fspath(url))


class Syncer(abc.ABC):
    """Copies local paths to remote URLs and back, atomically, skipping unchanged content.

    Subclasses set ``name`` (the registered name) and implement ``push`` and ``pull``.

    Example:
        >>> import pathlib, shutil, tempfile
        >>> class CopySyncer(Syncer):
        ...     name = "copy"
        ...     def push(self, local_path, remote_url):
        ...         shutil.copyfile(local_path, remote_url)
        ...         return content_hash(remote_url)
        ...     def pull(self, remote_url, local_path):
        ...         return self.push(remote_url, local_path)
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "a.txt").write_text("hello\\n")
        >>> CopySyncer().push(folder / "a.txt", folder / "b.txt") == content_hash(folder / "a.txt")
        True
    """

    name: ClassVar[str] = ""

    @classmethod
    def content_store(cls, url: str, **storage_options: Any) -> ContentStore:
        """The content store (files by MD5, DVC's layout) at ``url``: what offloaded runs
        (:func:`zoopipe_core.remote`) keep their inputs and outputs in. Plain fsspec by default;
        a syncer overrides it to read its own configuration (``zoopipe_dvc`` reads ``.dvc/config``)."""
        from zoopipe_core.syncers.store import ContentStore

        return ContentStore(url, storage_options)

    @abc.abstractmethod
    def push(self, local_path: str | os.PathLike[str], remote_url: str) -> str:
        """Copy ``local_path`` (file or directory) to ``remote_url``; return its content hash.

        When ``remote_url`` already holds the same content, nothing is copied.
        """

    @abc.abstractmethod
    def pull(self, remote_url: str, local_path: str | os.PathLike[str]) -> str:
        """Copy ``remote_url`` to ``local_path``; return its content hash.

        When ``local_path`` already holds the same content, nothing is copied.
        """
