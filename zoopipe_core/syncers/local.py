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
    temporary = temporary_beside(destination)
    try:
        if source.is_dir():
            shutil.copytree(source, temporary)
        else:
            shutil.copy2(source, temporary)
        swap_in(temporary, destination)
    except BaseException:
        remove_path(temporary)
        raise
    return digest


def temporary_beside(destination: Path) -> Path:
    """A fresh hidden name beside ``destination`` to build its new content under, then
    :func:`swap_in` (beside it: on the same filesystem, so the rename is atomic).

    Example:
        >>> from pathlib import Path
        >>> temporary_beside(Path("/data/out.csv")).name.startswith(".out.csv.zoopipe-tmp-")
        True
    """
    return destination.with_name(f".{destination.name}.zoopipe-tmp-{uuid.uuid4().hex}")


def swap_in(temporary: Path, destination: Path) -> None:
    """Put ``temporary`` (a file or directory) in the place of ``destination``.

    A file replaces its destination in one rename. A directory cannot be renamed over a
    non-empty one, so the old directory is renamed aside first and removed after; if the swap
    fails the old one is put back.

    Example:
        >>> import pathlib, tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "out").mkdir(); _ = (folder / "out" / "old.txt").write_text("old")
        >>> new = temporary_beside(folder / "out"); _ = new.mkdir()
        >>> _ = (new / "new.txt").write_text("new")
        >>> swap_in(new, folder / "out")
        >>> sorted(p.name for p in folder.rglob("*"))
        ['new.txt', 'out']
    """
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
    remove_path(aside)


def remove_path(path: Path) -> None:
    """Remove a file, a symlink or a directory tree, if it exists (best effort for trees)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()
