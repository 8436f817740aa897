"""MD5 digests of local files, remembered by (size, mtime, inode) so unchanged files are not read.

MD5 is what DVC 3 addresses content by, so what zoopipe stores in a content store is what
``dvc push`` would store. The cache is a SQLite file in the host's zoopipe cache directory
(``ZOOPIPE_CACHE_DIR``, else ``~/.cache/zoopipe``), shared by the processes of one host.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

from zoopipe_core.installers.host_install import cache_dir

_CHUNK = 1 << 20
#: Files hashed at once: hashlib releases the GIL on large buffers, so threads read and hash
#: in parallel; more than a few only queue on the disk.
HASH_THREADS = 4


def md5_file(path: str | os.PathLike[str]) -> str:
    """The MD5 hex digest of a file's bytes (what ``md5sum`` prints and DVC 3 stores by).

    Example:
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
        >>> _ = path.write_text("hello\\n")
        >>> md5_file(path)
        'b1946ac92492d2347c6235b4d2611184'
    """
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _stat_key(stat: os.stat_result) -> tuple[int, int, int]:
    return (stat.st_size, stat.st_mtime_ns, stat.st_ino)


class HashCache:
    """MD5 digests of files, computed once per (size, mtime, inode) and kept in SQLite.

    A file whose size, modification time or inode changed is read again; one that did not is
    answered from the cache. ``path=None`` uses ``<zoopipe cache dir>/md5.sqlite``;
    ``persistent=False`` keeps nothing (for files hashed once, such as a run's fresh outputs).

    Example:
        >>> import pathlib, tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "a.txt").write_text("hello\\n")
        >>> cache = HashCache(folder / "cache.sqlite")
        >>> cache.md5s([folder / "a.txt"])
        {PosixPath('...a.txt'): 'b1946ac92492d2347c6235b4d2611184'}
        >>> cache.hashed  # files read so far; a second call reads none
        1
        >>> _ = cache.md5s([folder / "a.txt"]); cache.hashed
        1
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, persistent: bool = True) -> None:
        self.path = Path(path) if path is not None else cache_dir() / "md5.sqlite"
        self.persistent = persistent
        self.hashed = 0
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection | None:
        if self._connection is None and self.persistent:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                connection = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute(
                    "CREATE TABLE IF NOT EXISTS md5 (path TEXT PRIMARY KEY, size INTEGER, "
                    "mtime_ns INTEGER, inode INTEGER, md5 TEXT)"
                )
                connection.execute(
                    "CREATE TABLE IF NOT EXISTS pushed (store TEXT, path TEXT, hash TEXT, "
                    "PRIMARY KEY (store, path))"
                )
                connection.commit()
            except sqlite3.Error:
                # A cache that cannot be opened (read-only home, a full disk) costs speed, not
                # correctness: every file is hashed.
                return None
            self._connection = connection
        return self._connection

    def md5s(self, paths: Iterable[Path]) -> dict[Path, str]:
        """The MD5 of each file in ``paths`` (absolute or not), reading only changed files."""
        paths = list(paths)
        stats = {path: _stat_key(path.stat()) for path in paths}
        known: dict[Path, str] = {}
        with self._lock:
            connection = self._connect()
            if connection is not None:
                for path in paths:
                    row = connection.execute(
                        "SELECT size, mtime_ns, inode, md5 FROM md5 WHERE path = ?", (str(path.absolute()),)
                    ).fetchone()
                    if row is not None and tuple(row[:3]) == stats[path]:
                        known[path] = row[3]
        missing = [path for path in paths if path not in known]
        if missing:
            with concurrent.futures.ThreadPoolExecutor(HASH_THREADS) as pool:
                fresh = dict(zip(missing, pool.map(md5_file, missing), strict=True))
            known.update(fresh)
            self.hashed += len(missing)
            self._remember({path: (stats[path], fresh[path]) for path in missing})
        return {path: known[path] for path in paths}

    def _remember(self, entries: dict[Path, tuple[tuple[int, int, int], str]]) -> None:
        self._write(
            "INSERT OR REPLACE INTO md5 VALUES (?, ?, ?, ?, ?)",
            [(str(path.absolute()), *stat, md5) for path, (stat, md5) in entries.items()],
        )

    def _write(self, statement: str, rows: list[tuple[object, ...]]) -> None:
        """Run ``statement`` for each row in one transaction; a cache that cannot be written
        only costs speed (the next lookup reads the files again)."""
        with self._lock:
            connection = self._connect()
            if connection is None:
                return
            try:
                with connection:
                    connection.executemany(statement, rows)
            except sqlite3.Error:
                pass

    def last_pushed(self, store: str, path: Path) -> str | None:
        """The hash last pushed from ``path`` to the store at URL ``store``, if remembered."""
        with self._lock:
            connection = self._connect()
            if connection is None:
                return None
            row = connection.execute(
                "SELECT hash FROM pushed WHERE store = ? AND path = ?", (store, str(path.absolute()))
            ).fetchone()
        return row[0] if row else None

    def remember_pushed(self, store: str, path: Path, digest: str) -> None:
        """Note that ``path``'s content ``digest`` is now stored at ``store``."""
        self._write("INSERT OR REPLACE INTO pushed VALUES (?, ?, ?)", [(store, str(path.absolute()), digest)])

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def __getstate__(self) -> dict[str, object]:
        return {"path": self.path, "persistent": self.persistent}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__init__(state["path"], persistent=state["persistent"])  # type: ignore[misc]
