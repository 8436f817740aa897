"""The ``local`` syncer: plain paths and ``file://`` URLs, e.g. a shared NFS mount."""

from __future__ import annotations

import os
import shutil
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

from zoopipe_core.syncers.base import Syncer, content_hash


def path_of_url(url: str | os.PathLike[str]) -> Path:
    """The filesystem path of a plain path or a ``file://`` URL.

    Example:
        >>> path_of_url("file:///tmp/my%20data.csv").as_posix()
        '/tmp/my data.csv'
    """
    text = os.fspath(url)
    if "://" not in text:
        return Path(text)
    parts = urllib.parse.urlsplit(text)
    if parts.scheme.lower() != "file" or parts.netloc not in ("", "localhost"):
        raise ValueError(
            f"the local syncer serves local paths and file:// URLs, not {text!r}; "
            "zoopipe_core.plugins.get_syncer_class_for_url(url) picks the syncer for a URL"
        )
    return Path(urllib.request.url2pathname(parts.path))


class LocalSyncer(Syncer):
    """Copies files and directories between local paths, atomically, skipping unchanged content.

    The copy is written under a temporary name beside the destination, then renamed into place.

    Example:
        >>> import pathlib, tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "data.csv").write_text("a,b\\n1,2\\n")
        >>> syncer = LocalSyncer()
        >>> digest = syncer.push(folder / "data.csv", (folder / "remote" / "data.csv").as_uri())
        >>> (folder / "remote" / "data.csv").read_text()
        'a,b\\n1,2\\n'
        >>> syncer.pull((folder / "remote" / "data.csv").as_uri(), folder / "copy.csv") == digest
        True
    """

    name = "local"

    def push(self, local_path: str | os.PathLike[str], remote_url: str) -> str:
        return copy_atomically(Path(local_path), path_of_url(remote_url))

    def pull(self, remote_url: str, local_path: str | os.PathLike[str]) -> str:
        return copy_atomically(path_of_url(remote_url), Path(local_path))


def copy_atomically(source: Path, destination: Path) -> str:
    """Copy ``source`` to ``destination`` unless it already holds the same content.

    Returns the content hash. A file replaces its destination in one rename. A directory is
    built beside its destination, then swapped in: the old directory is renamed aside first
    (rename cannot replace a non-empty directory), so a crash in between leaves the old copy
    under a ``.zoopipe-old-*`` name rather than a half-written destination.
    """
    if not source.exists():
        raise FileNotFoundError(f"cannot copy {source}: it does not exist")
    digest = content_hash(source)
    if (
        destination.exists()
        and destination.is_dir() == source.is_dir()
        and content_hash(destination) == digest
    ):
        return digest
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = destination.with_name(f".{destination.name}.zoopipe-tmp-{uuid.uuid4().hex}")
    try:
        if source.is_dir():
            shutil.copytree(source, temporary)
        else:
            shutil.copy2(source, temporary)
        _swap_in(temporary, destination)
    except BaseException:
        _remove(temporary)
        raise
    return digest


def _swap_in(temporary: Path, destination: Path) -> None:
    if not (temporary.is_dir() or destination.is_dir()):
        os.replace(temporary, destination)
        return
    if not destination.exists() and not destination.is_symlink():
        os.replace(temporary, destination)
        return
    aside = destination.with_name(f".{destination.name}.zoopipe-old-{uuid.uuid4().hex}")
    os.replace(destination, aside)
    try:
        os.replace(temporary, destination)
    except BaseException:
        os.replace(aside, destination)
        raise
    _remove(aside)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()
