"""A content store: files kept by MD5 under any fsspec URL, in DVC 3's remote layout.

An object lives at ``<root>/files/md5/<first 2 hex>/<other 30>``; a directory's listing at the
same place with ``.dir`` appended (see :mod:`zoopipe_core.syncers.manifest`). A DVC remote is such
a root, so what zoopipe stores there ``dvc push`` finds already stored. Objects are immutable and
named by their content: writing one twice is harmless, and only missing objects are sent.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import shutil
import stat
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from zoopipe_core.syncers.hashing import HashCache, md5_file
from zoopipe_core.syncers.local import remove_path, swap_in, temporary_beside
from zoopipe_core.syncers.manifest import DIR_SUFFIX, FileEntry, Manifest

#: Transfers in flight at once for a filesystem without an async bulk API (local, NFS...).
TRANSFER_THREADS = 8
#: Up to this many objects are looked up one by one (HEAD); more, by listing their prefixes.
LOOKUPS_ONE_BY_ONE = 64
#: Storage options whose values are secrets: never shown in a repr, a log line or an error.
SECRET_OPTIONS = (
    "key",
    "secret",
    "token",
    "password",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "session_token",
    "ssecustomerkey",
    "sse_customer_key",
    "client_secret",
)


class StorageError(OSError):
    """The content store cannot be reached or holds something other than what was expected."""


def redacted(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with secret values replaced by ``'***'`` (nested dicts too).

    Example:
        >>> redacted({"key": "AKIA...", "client_kwargs": {"endpoint_url": "http://x"}})
        {'key': '***', 'client_kwargs': {'endpoint_url': 'http://x'}}
    """
    return {
        name: "***"
        if name.lower() in SECRET_OPTIONS
        else redacted(value)
        if isinstance(value, dict)
        else value
        for name, value in options.items()
    }


class ContentStore:
    """Files and directories by MD5 under ``url`` (any fsspec URL), in DVC 3's remote layout.

    ``storage_options`` go to the URL's fsspec filesystem (for ``s3://``: ``key``, ``secret``,
    ``endpoint_url``...; the standard credential chain and ``AWS_ENDPOINT_URL`` apply as well).
    The store pickles as its URL and options, so it travels to workers, which open their own
    connection; its repr never shows a secret.

    Example:
        >>> import pathlib, tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "data").mkdir(); _ = (folder / "data" / "a.txt").write_text("hello\\n")
        >>> store = ContentStore((folder / "store").as_uri())
        >>> manifest = Manifest.of(folder / "data", HashCache(folder / "md5.sqlite"))
        >>> store.push(folder / "data", manifest)  # bytes sent
        6
        >>> store.push(folder / "data", manifest)  # already there
        0
        >>> store.object_path("b1946ac92492d2347c6235b4d2611184").split("/")[-4:]
        ['files', 'md5', 'b1', '946ac92492d2347c6235b4d2611184']
        >>> store.pull(manifest, folder / "copy")
        6
        >>> (folder / "copy" / "a.txt").read_text()
        'hello\\n'
    """

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        self.url = os.fspath(url).rstrip("/")
        self.storage_options = dict(storage_options or {})
        self._fs: Any = None
        self._root = ""
        self._pid = os.getpid()

    def __repr__(self) -> str:
        options = f", {redacted(self.storage_options)!r}" if self.storage_options else ""
        return f"ContentStore({self.url!r}{options})"

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url, "storage_options": self.storage_options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["url"], state["storage_options"])  # type: ignore[misc]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ContentStore) and (self.url, self.storage_options) == (
            other.url,
            other.storage_options,
        )

    def __hash__(self) -> int:
        return hash(self.url)

    # ------------------------------------------------------------------ layout

    @property
    def fs(self) -> Any:
        """The fsspec filesystem of the store's URL (opened on first use)."""
        if self._fs is None or self._pid != os.getpid():  # a forked worker opens its own
            from fsspec.core import url_to_fs

            self._pid = os.getpid()

            # A filesystem of its own: fsspec's shared instances are not fork-safe (a forked
            # worker would reuse the driver's S3 connection) nor safe to close under another user.
            self._fs, self._root = url_to_fs(self.url, skip_instance_cache=True, **self.storage_options)
            self._root = self._root.rstrip("/")
        return self._fs

    @property
    def root(self) -> str:
        self.fs  # noqa: B018 - opens the filesystem, which sets the root
        return self._root

    def object_path(self, md5: str) -> str:
        """Where the object ``md5`` (a file's MD5, or a directory's ``<md5>.dir``) lives."""
        return f"{self.root}/files/md5/{md5[:2]}/{md5[2:]}"

    def _is_local(self) -> bool:
        return "file" in _protocols(self.fs) or "local" in _protocols(self.fs)

    def check_reachable(self) -> None:
        """Raise :class:`StorageError`, saying what to check, unless the store can be listed."""
        try:
            fs = self.fs
            if self._is_local():
                Path(self.root).mkdir(parents=True, exist_ok=True)
                if not os.access(self.root, os.W_OK):
                    raise PermissionError(f"{self.root} is not writable")
                return
            bucket = self.root.split("/", 1)[0]
            fs.ls(bucket, detail=False, refresh=True)
        except Exception as exc:
            raise StorageError(
                f"cannot reach the content store {self.url}: {type(exc).__name__}: {_safe(exc, self)}; "
                "check the URL, that the bucket or directory exists, and the credentials and endpoint "
                "(AWS_ENDPOINT_URL, AWS_PROFILE...) configured for it"
            ) from None

    # ------------------------------------------------------------------ lookups

    def has(self, md5: str) -> bool:
        return bool(self.fs.exists(self.object_path(md5)))

    def missing(self, md5s: Iterable[str]) -> set[str]:
        """The objects among ``md5s`` the store does not hold."""
        wanted = set(md5s)
        if not wanted:
            return set()
        fs = self.fs
        fs.invalidate_cache()
        if len(wanted) <= LOOKUPS_ONE_BY_ONE:
            with concurrent.futures.ThreadPoolExecutor(min(len(wanted), TRANSFER_THREADS * 2)) as pool:
                present = dict(zip(wanted, pool.map(self.has, wanted), strict=True))
            return {md5 for md5, here in present.items() if not here}
        # One listing of the store's two-hex-digit directories first: an empty or small store
        # answers in one request instead of one per prefix.
        try:
            existing = {
                name.rstrip("/").rsplit("/", 1)[-1] for name in fs.ls(f"{self.root}/files/md5", detail=False)
            }
        except FileNotFoundError:
            existing = set()
        prefixes = sorted({md5[:2] for md5 in wanted} & existing)

        def listed(prefix: str) -> set[str]:
            try:
                names = fs.ls(f"{self.root}/files/md5/{prefix}", detail=False)
            except FileNotFoundError:
                return set()
            return {prefix + name.rstrip("/").rsplit("/", 1)[-1] for name in names}

        with concurrent.futures.ThreadPoolExecutor(TRANSFER_THREADS * 2) as pool:
            stored: set[str] = set().union(*pool.map(listed, prefixes))
        return wanted - stored

    # ------------------------------------------------------------------ push

    def push(
        self, local_path: str | os.PathLike[str], manifest: Manifest, previous: str | None = None
    ) -> int:
        """Store the files of ``local_path`` (described by ``manifest``) that the store lacks,
        then the directory's object; return the bytes sent.

        A directory whose object is already stored is complete (its object is written last), so
        it costs one lookup. ``previous``, the hash of a directory pushed from the same path
        before, makes a changed directory cheap too: when its object is still stored, its
        files are, and only the other files are looked up."""
        root = Path(local_path)
        if manifest.kind == "dir" and self.has(manifest.hash):
            return 0
        by_md5: dict[str, FileEntry] = {entry.md5: entry for entry in manifest.files}
        missing = self.missing(set(by_md5) - self._stored_with(previous))
        sources = [(manifest.local_path(root, by_md5[md5]), md5) for md5 in sorted(missing)]
        self._put_many(sources)
        if manifest.kind == "dir":
            self._put_bytes(manifest.dir_bytes(), self.object_path(manifest.hash))
        return sum(by_md5[md5].size for md5 in missing)

    def _stored_with(self, directory: str | None) -> set[str]:
        """The files of the stored directory ``directory`` (none unless its object is stored)."""
        if directory is None or not directory.endswith(DIR_SUFFIX):
            return set()
        try:
            return {entry.md5 for entry in self.read_manifest(directory).files}
        except (FileNotFoundError, ValueError):
            return set()

    def _put_many(self, sources: list[tuple[Path, str]]) -> None:
        if not sources:
            return
        fs = self.fs
        targets = [self.object_path(md5) for _, md5 in sources]
        if getattr(fs, "async_impl", False):
            # s3fs and friends send a list of files concurrently on their own event loop.
            fs.put([str(path) for path, _ in sources], targets)
            return
        with concurrent.futures.ThreadPoolExecutor(TRANSFER_THREADS) as pool:
            list(pool.map(self._put_local, [path for path, _ in sources], targets))

    def _put_local(self, source: Path, target: str) -> None:
        # A local or mounted store: written under a temporary name, then renamed, so a reader
        # never sees half an object.
        fs = self.fs
        fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        temporary = f"{target}.tmp-{uuid.uuid4().hex}"
        try:
            fs.put_file(str(source), temporary)
            fs.mv(temporary, target)
        except BaseException:
            with contextlib.suppress(Exception):
                fs.rm_file(temporary)
            raise

    def _put_bytes(self, data: bytes, target: str) -> None:
        fs = self.fs
        if getattr(fs, "async_impl", False):
            fs.pipe_file(target, data)
            return
        fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        temporary = f"{target}.tmp-{uuid.uuid4().hex}"
        fs.pipe_file(temporary, data)
        fs.mv(temporary, target)

    # ------------------------------------------------------------------ pull

    def read_manifest(self, md5: str) -> Manifest:
        """The manifest of the directory stored as ``md5`` (``<md5>.dir``)."""
        if not md5.endswith(DIR_SUFFIX):
            raise ValueError(f"{md5} names a file, not a directory ({DIR_SUFFIX})")
        return Manifest.from_dir_bytes(self.fs.cat_file(self.object_path(md5)))

    def fetch(self, pairs: list[tuple[str, Path]]) -> None:
        """Download each object ``md5`` to its local path, verifying its MD5."""
        if not pairs:
            return
        fs = self.fs
        for _, path in pairs:
            path.parent.mkdir(parents=True, exist_ok=True)
        sources = [self.object_path(md5) for md5, _ in pairs]
        try:
            if getattr(fs, "async_impl", False):
                fs.get(sources, [str(path) for _, path in pairs])
            else:
                with concurrent.futures.ThreadPoolExecutor(TRANSFER_THREADS) as pool:
                    list(pool.map(fs.get_file, sources, [str(path) for _, path in pairs]))
        except FileNotFoundError as exc:
            raise StorageError(
                f"the content store {self.url} lacks an object this run needs ({exc}); was it "
                "written to another store, or cleaned? For workers on other machines, pass a "
                "storage= they can reach (an s3:// URL)"
            ) from None
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            actual = list(pool.map(md5_file, [path for _, path in pairs]))
        for (md5, _), got in zip(pairs, actual, strict=True):
            if got != md5:
                raise StorageError(
                    f"{self.object_path(md5)} in {self.url} holds content with MD5 {got}, not {md5}: "
                    "the store is corrupt or was written by something else; remove that object"
                )

    def pull(
        self,
        manifest: Manifest,
        destination: str | os.PathLike[str],
        cache: HashCache | None = None,
    ) -> int:
        """Make ``destination`` hold exactly ``manifest``'s content; return the bytes downloaded.

        Built beside the destination and swapped in whole (:meth:`stage`), so it holds the old
        content or the new, never a mix.
        """
        temporary, downloaded = self.stage(manifest, destination, cache)
        swap_in(temporary, Path(destination))
        return downloaded

    def stage(
        self,
        manifest: Manifest,
        destination: str | os.PathLike[str],
        cache: HashCache | None = None,
    ) -> tuple[Path, int]:
        """Build ``manifest``'s content under a temporary name beside ``destination``, verified;
        return it and the bytes downloaded. ``swap_in(temporary, destination)`` publishes it;
        ``remove_path(temporary)`` drops it. Files the destination already holds with the same
        MD5 are reused (hard-linked, or copied across filesystems) instead of downloaded."""
        destination = Path(destination)
        cache = cache if cache is not None else HashCache()
        existing = _existing_md5s(destination, cache)
        destination.parent.mkdir(parents=True, exist_ok=True)
        temporary = temporary_beside(destination)
        try:
            wanted: list[tuple[str, Path]] = []
            if manifest.kind == "dir":
                temporary.mkdir()
            for entry in manifest.files:
                target = manifest.local_path(temporary, entry)
                target.parent.mkdir(parents=True, exist_ok=True)
                reuse = existing.get(entry.md5)
                if reuse is not None:
                    link_or_copy(reuse, target)
                else:
                    wanted.append((entry.md5, target))
            fetched = _first_of_each(wanted)
            self.fetch(fetched)
            first = dict(fetched)
            for md5, target in wanted:
                if first[md5] != target:  # another file with the same content
                    link_or_copy(first[md5], target)
        except BaseException:
            remove_path(temporary)
            raise
        sizes = {entry.md5: entry.size for entry in manifest.files}
        return temporary, sum(sizes[md5] for md5, _ in fetched)


def _first_of_each(pairs: list[tuple[str, Path]]) -> list[tuple[str, Path]]:
    seen: set[str] = set()
    first = []
    for md5, path in pairs:
        if md5 not in seen:
            seen.add(md5)
            first.append((md5, path))
    return first


def _existing_md5s(destination: Path, cache: HashCache) -> dict[str, Path]:
    """MD5 -> a file under ``destination`` holding it (what a pull can reuse)."""
    if destination.is_file():
        files = [destination]
    elif destination.is_dir():
        files = [p for p in destination.rglob("*") if p.is_file() and not p.is_symlink()]
    else:
        return {}
    return {md5: path for path, md5 in cache.md5s(files).items()}


def link_or_copy(source: Path, target: Path) -> None:
    """Hard-link ``source`` at ``target``; copy when a link is impossible (another filesystem)."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def make_read_only(path: Path) -> None:
    mode = path.stat().st_mode
    path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def _safe(exc: BaseException, store: ContentStore) -> str:
    """``exc``'s message with every secret storage option blanked out."""
    text = str(exc)
    for name, value in store.storage_options.items():
        if name.lower() in SECRET_OPTIONS and isinstance(value, str) and value:
            text = text.replace(value, "***")
    return text
