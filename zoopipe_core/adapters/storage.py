"""Paths and URLs: opening inputs, and outputs that publish atomically.

Local paths are handed to Rust as paths (it opens them itself, without the GIL); other fsspec
URLs (``memory://``, ``s3://``) as open Python file objects. An output is written under a
temporary name and renamed into place only on commit, so a failed run leaves nothing under the
final name.

Storage that can hold a write back until it is committed needs no temporary name: when the syncer
registered for a URL's scheme has a class method ``open_uncommitted(url)``, the output is written
straight to its final name through the object it returns (``write``/``flush``, then ``commit()``
publishes and ``discard()`` drops). The S3 plugin does this with a multipart upload that is
completed on commit and aborted on failure, so no copy of the output is made.
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from collections.abc import Sequence
from typing import Any

from fsspec.core import url_to_fs

from zoopipe_core.adapters.native_spec import Location
from zoopipe_core.errors import PipelineError

_HOST = re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname()) or "host"
_TEMP_SUFFIX = re.compile(r"\.zoopipe-(?P<host>[A-Za-z0-9_.]+)-(?P<pid>\d+)-[0-9a-f]{12}\.tmp$")


def temp_suffix() -> str:
    """The suffix of a temporary output written by this process: it names the host and the pid,
    so a later run can tell the leftovers of a dead writer from a file another run is writing.

    Example:
        >>> bool(_TEMP_SUFFIX.search("out.jsonl" + temp_suffix()))
        True
    """
    return f".zoopipe-{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def leftover_temps(url: str) -> list[tuple[str, bool]]:
    """The temporary files of runs writing the local output ``url``
    (``.name.zoopipe-<host>-<pid>-<id>.tmp``), each with whether it is stale: its writer is a
    process of this host that no longer exists. Empty for non-local URLs."""
    if not is_local(url):
        return []
    directory, name = os.path.split(os.path.abspath(local_path(url)))
    prefix = f".{name}.zoopipe-"
    try:
        names = [entry.name for entry in os.scandir(directory) if entry.name.startswith(prefix)]
    except FileNotFoundError:
        return []
    found = []
    for entry in names:
        match = _TEMP_SUFFIX.search(entry)
        if match is None or entry[: match.start()] != f".{name}":
            continue
        stale = match["host"] == _HOST and not _process_alive(int(match["pid"]))
        found.append((os.path.join(directory, entry), stale))
    return found


def remove_stale_temps(url: str) -> list[str]:
    """Remove the temporary files that runs left beside the local output ``url`` when their
    writer is a process of this host that no longer exists (a worker killed with SIGKILL, say).
    Files of live processes, or of other hosts, are left alone. Returns the paths removed.

    Example:
        >>> import tempfile, os
        >>> folder = tempfile.mkdtemp()
        >>> dead = os.path.join(folder, f".out.jsonl.zoopipe-{_HOST}-999999999-0123456789ab.tmp")
        >>> _ = open(dead, "w").write("partial")
        >>> remove_stale_temps(os.path.join(folder, "out.jsonl")) == [dead]
        True
    """
    removed = []
    for path, stale in leftover_temps(url):
        if not stale:
            continue
        try:
            os.remove(path)
            removed.append(path)
        except FileNotFoundError:
            pass  # removed meanwhile by another cleanup
    return removed


def is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def local_path(url: str) -> str:
    """The local path of a path or ``file://`` URL, with ``~`` expanded (as pandas does)."""
    return os.path.expanduser(url[len("file://") :] if url.startswith("file://") else url)


def compression_for(url: str) -> str:
    """Compression implied by the suffix: `.gz` is gzip, `.zst` zstd."""
    if url.endswith(".gz"):
        return "gzip"
    if url.endswith(".zst"):
        return "zstd"
    return "none"


def open_input(
    url: str, byte_range: tuple[int, int] | None = None, *, random_access: bool = False
) -> Location:
    """Where the executor reads `url`: its local path, or an open fsspec file. With a
    ``byte_range`` (a shard of a text file), a URL is a file object of that range only: the
    ``open_range`` of the syncer serving its scheme (:func:`range_opener`), else a
    :class:`~zoopipe_core.adapters.ranged.RangeReader`; a local file's range is read by Rust.
    With ``random_access`` (Parquet, Arrow), a URL is a
    :class:`~zoopipe_core.adapters.ranged.RangedFile` that fetches only the byte ranges read.
    Raises if the input is missing."""
    if is_local(url):
        path = local_path(url)
        if not os.path.exists(path):
            raise PipelineError(f"input file not found: {path}; check the path (cwd is {os.getcwd()})")
        if os.path.isdir(path):
            raise PipelineError(f"input {path} is a directory; give a file")
        if not os.access(path, os.R_OK):
            raise PipelineError(f"input file {path} is not readable: check its permissions")
        return Location(path=path)
    fs, path = filesystem_for(url)
    if not fs.exists(path):
        raise PipelineError(
            f"input file not found: {url}; check the URL, and that the credentials and endpoint "
            f"configured for {url.split('://', 1)[0]}:// can see it"
        )
    if fs.isdir(path):
        raise PipelineError(f"input {url} is a directory (a prefix); give the URL of one file")
    if byte_range is not None:
        from zoopipe_core.adapters.ranged import RangeReader  # ranged imports this module

        opener = range_opener(url) or RangeReader
        return Location(file=opener(url, *byte_range))
    if random_access:
        from zoopipe_core.adapters.ranged import RangedFile  # ranged.py imports this module

        return Location(file=RangedFile(url))
    return Location(file=fs.open(path, "rb"))


def filesystem_for(url: str) -> tuple[Any, str]:
    """fsspec's filesystem and path for ``url``.

    When the filesystem's package is missing and a zoopipe plugin serves the scheme, the plugin's
    ``PluginError`` (with its ``pip install`` command) is raised instead of fsspec's ImportError.

    Example:
        >>> fs, path = filesystem_for("memory://bucket/data.csv")
        >>> type(fs).__name__, path
        ('MemoryFileSystem', '/bucket/data.csv')
    """
    try:
        return url_to_fs(url)
    except ImportError as missing:
        from zoopipe_core import plugins
        from zoopipe_core.errors import PluginError

        try:
            plugins.syncer_name_for_url(url)
        except PluginError:
            raise missing from None  # no plugin serves this scheme: fsspec's own message says it best
        plugins.get_syncer_class_for_url(url)  # a missing extra raises PluginError with its command
        raise


def _syncer_method(url: str, name: str) -> Any:
    """Class method ``name`` of the syncer serving the URL's scheme, or None if it has none (or no
    syncer serves the scheme); a syncer whose extra is missing raises its ``PluginError``."""
    from zoopipe_core import plugins
    from zoopipe_core.errors import PluginError

    try:
        plugins.syncer_name_for_url(url)
    except PluginError:
        return None
    return getattr(plugins.get_syncer_class_for_url(url), name, None)


def uncommitted_opener(url: str) -> Any:
    """``open_uncommitted`` of the syncer serving the URL's scheme, or None if it has none.

    A scheme no syncer serves (``memory://``) gets None; a syncer whose extra is missing raises
    its ``PluginError`` with the ``pip install`` command.

    Example:
        >>> uncommitted_opener("memory://bucket/out.csv") is None
        True
    """
    return _syncer_method(url, "open_uncommitted")


def range_opener(url: str) -> Any:
    """``open_range`` of the syncer serving the URL's scheme, or None if it has none.

    ``open_range(url, start, end)`` returns a binary file object of bytes ``start..end`` of the
    file at ``url`` only, read as the store serves ranges best (the S3 plugin streams one ranged
    GET); without one, a shard reads its range by :class:`~zoopipe_core.adapters.ranged.RangeReader`.

    Example:
        >>> range_opener("memory://bucket/data.csv") is None
        True
    """
    return _syncer_method(url, "open_range")


def object_merger(target: str, parts: Sequence[str]) -> Any:
    """``merge_objects`` of the syncer serving ``target``'s scheme when every part is on a URL of
    the same syncer, else None (local files, ``memory://``, parts on another store).

    ``merge_objects(target, [(part, start), ...])`` publishes at ``target``, atomically, the bytes
    of each part from offset ``start`` on, in order, copied on the store itself (no byte through
    this process); it raises, publishing nothing, if any part cannot be copied. The S3 plugin
    offers it (a multipart upload of server-side part copies).

    Example:
        >>> object_merger("memory://bucket/out.csv", ["memory://bucket/out.part-00001.csv"]) is None
        True
    """
    if is_local(target) or any(is_local(p) for p in parts):
        return None
    from zoopipe_core import plugins
    from zoopipe_core.errors import PluginError

    try:
        name = plugins.syncer_name_for_url(target)
        if any(plugins.syncer_name_for_url(p) != name for p in parts):
            return None
    except PluginError:
        return None
    return _syncer_method(target, "merge_objects")


class PendingOutput:
    """An output being written under a temporary name; `commit()` publishes it, `abort()` drops it.

    Where the storage offers uncommitted writes (see ``uncommitted_opener``), the output is
    written to its final name directly and ``temp_path`` is None.

    Example:
        >>> import tempfile, os
        >>> target = os.path.join(tempfile.mkdtemp(), "out.txt")
        >>> pending = PendingOutput(target)
        >>> with open(pending.location().path, "w") as f: _ = f.write("hi")
        >>> os.path.exists(target)
        False
        >>> pending.commit(); open(target).read()
        'hi'
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._file: Any = None
        suffix = temp_suffix()
        if is_local(url):
            self._fs = None
            final = os.path.abspath(local_path(url))
            directory, name = os.path.split(final)
            os.makedirs(directory, exist_ok=True)
            remove_stale_temps(final)  # what a killed run of this output left behind
            self.final_path = final
            self.temp_path: str | None = os.path.join(directory, f".{name}{suffix}")
        else:
            self._open_uncommitted = uncommitted_opener(url)
            self._fs, path = filesystem_for(url)
            self.final_path = path
            # Hidden (".name..."), as locally: dataset readers listing the directory skip it.
            directory, _, name = path.rpartition("/")
            hidden = f"{directory}/.{name}{suffix}" if directory else f".{name}{suffix}"
            self.temp_path = None if self._open_uncommitted is not None else hidden

    def location(self) -> Location:
        """Where to write: the local temporary path, or a file object opened now."""
        if self._fs is None:
            return Location(path=self.temp_path)
        if self.temp_path is None:
            self._file = self._open_uncommitted(self.url)
        else:
            self._file = self._fs.open(self.temp_path, "wb")
        return Location(file=self._file)

    def commit(self) -> None:
        try:
            if self._fs is not None and self.temp_path is None:
                if self._file is not None:
                    self._file.commit()
                return
            if self._file is not None:
                self._file.close()
            if self._fs is None:
                assert self.temp_path is not None  # a local output always has one
                os.replace(self.temp_path, self.final_path)
            else:
                self._fs.mv(self.temp_path, self.final_path)
        except OSError as exc:
            raise PipelineError(f"could not publish {self.url}: {exc}") from exc

    def abort(self) -> None:
        if self._fs is not None and self.temp_path is None:
            if self._file is not None:
                self._file.discard()
            return
        try:
            if self._file is not None:
                self._file.close()
        except Exception:
            pass
        if self._fs is None:
            assert self.temp_path is not None  # a local output always has one
            if os.path.exists(self.temp_path):
                os.remove(self.temp_path)
        elif self._fs.exists(self.temp_path):
            self._fs.rm(self.temp_path)
