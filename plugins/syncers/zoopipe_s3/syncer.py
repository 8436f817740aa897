"""The ``s3`` syncer (outputs written to S3 go through :class:`zoopipe_s3.upload.S3Upload`).

Every object a push writes carries its sha256 in the user metadata ``zoopipe-sha256``, so later
pushes and pulls skip unchanged files without downloading them. A pushed directory also gets a
manifest, ``<prefix>/.zoopipe-manifest.json``, written after its files: it lists every file with
its hash and the directory's content hash, and is what a pull trusts.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path, PurePosixPath
from typing import Any

import s3fs
from fsspec.core import url_to_fs

from zoopipe_core.syncers import (
    ContentStore,
    Syncer,
    content_hash,
    file_hash,
    remove_path,
    swap_in,
    temporary_beside,
    url_path,
)
from zoopipe_s3.upload import S3Upload

#: User-metadata key (``x-amz-meta-zoopipe-sha256``) holding an object's sha256.
HASH_METADATA = "zoopipe-sha256"
#: Name of the manifest object inside a pushed directory's prefix.
MANIFEST_NAME = ".zoopipe-manifest.json"


class S3Syncer(Syncer):
    """Pushes local files and directories to ``s3://`` URLs and pulls them back, by content hash.

    ``storage_options`` go to ``s3fs.S3FileSystem`` (``key``, ``secret``, ``endpoint_url``
    through ``client_kwargs``, ``profile``...); fsspec's configuration for ``s3`` and the usual
    AWS environment variables and files apply as well.

    - **Files** are single objects, written atomically by S3 itself (one PUT, or a multipart
      upload completed at the end). Each carries its sha256 in its metadata; a push of unchanged
      content, or a pull onto a local file that already has it, copies nothing.
    - **Directories** are pushed file by file, skipping files whose hash the prefix already
      holds, then the manifest is written, then objects no longer present locally are deleted.
      A pull downloads the files the manifest lists into a temporary directory beside the
      destination, reusing local files that already match, verifies every hash (a push running
      at the same time is reported, never mixed in), and swaps the directory into place.

    Example (against moto's S3 server, as in the test suite):
        >>> import pathlib, tempfile
        >>> from moto.server import ThreadedMotoServer
        >>> server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        >>> server.start()
        >>> endpoint = "http://%s:%d" % server.get_host_and_port()
        >>> syncer = S3Syncer(client_kwargs={"endpoint_url": endpoint}, key="k", secret="s")
        >>> syncer.fs.mkdir("demo")
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "data").mkdir(); _ = (folder / "data" / "a.csv").write_text("x\\n1\\n")
        >>> digest = syncer.push(folder / "data", "s3://demo/runs/data")
        >>> syncer.remote_hash("s3://demo/runs/data") == digest
        True
        >>> syncer.pull("s3://demo/runs/data", folder / "copy") == digest
        True
        >>> (folder / "copy" / "a.csv").read_text()
        'x\\n1\\n'
        >>> _ = syncer.fs.rm("demo", recursive=True)  # moto's buckets outlive its server in this process
        >>> server.stop()
    """

    name = "s3"

    def __init__(self, **storage_options: Any) -> None:
        # A syncer's own filesystem: its listings must not come from another instance's cache.
        self.fs = s3fs.S3FileSystem(skip_instance_cache=True, **storage_options)

    @classmethod
    def content_store(cls, url: str, **storage_options: Any) -> ContentStore:
        """The content store of offloaded runs at ``url``, with the endpoint this process uses.

        Workers on other hosts open the store themselves: the endpoint configured here (the
        ``endpoint_url`` option, ``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``, or fsspec's ``s3``
        configuration) travels with it, so they reach the same server. Credentials do not: each
        worker uses its own credential chain (environment, profile, instance role), unless they
        were passed here explicitly (``key=``, ``secret=``, ``token=``).

        Example:
            >>> import os
            >>> from unittest import mock
            >>> with mock.patch.dict(os.environ, {"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9000"}):
            ...     S3Syncer.content_store("s3://bucket/runs").storage_options
            {'client_kwargs': {'endpoint_url': 'http://127.0.0.1:9000'}}
        """
        options = dict(storage_options)
        client_kwargs = dict(options.get("client_kwargs") or {})
        if not (client_kwargs.get("endpoint_url") or options.get("endpoint_url")):
            endpoint = _configured_endpoint()
            if endpoint:
                options["client_kwargs"] = {**client_kwargs, "endpoint_url": endpoint}
        return ContentStore(url, options)

    @classmethod
    def open_uncommitted(cls, url: str) -> S3Upload:
        """An :class:`S3Upload` to ``url``, with the storage options fsspec resolves for it."""
        fs, path = url_to_fs(url)
        return S3Upload(fs, path)

    @classmethod
    def open_range(cls, url: str, start: int, end: int) -> Any:
        """A binary file object of bytes ``start..end`` of the object at ``url``, streamed by
        one ranged GET (:class:`zoopipe_s3.ranged.S3RangeStream`): how a worker reads its shard
        of a CSV or JSON Lines object."""
        from zoopipe_s3.ranged import S3RangeStream

        return S3RangeStream(url, start, end)

    @classmethod
    def merge_objects(cls, target: str, parts: list[tuple[str, int]]) -> None:
        """Publish at ``target`` the bytes of each ``(part URL, start offset)`` from its offset on,
        copied server-side into a multipart upload completed last (see :mod:`zoopipe_s3.merge`).
        zoopipe's CSV and JSON Lines mergers use it when the parts and the target are on S3."""
        from zoopipe_s3.merge import merge_objects

        merge_objects(target, parts)

    # ------------------------------------------------------------------ hashes

    def _path(self, url: str) -> str:
        text = os.fspath(url)
        if not text.lower().startswith(("s3://", "s3a://")):
            raise ValueError(f"the s3 syncer serves s3:// URLs, not {text!r}")
        path = url_path(text).rstrip("/")
        if "/" not in path:
            raise ValueError(f"{text!r} names a bucket; give a key or prefix inside it: s3://bucket/key")
        return path

    def _object_hash(self, path: str) -> str | None:
        try:
            return self.fs.metadata(path, refresh=True).get(HASH_METADATA)
        except FileNotFoundError:
            return None

    def _manifest(self, path: str) -> dict[str, Any] | None:
        try:
            return json.loads(self.fs.cat_file(f"{path}/{MANIFEST_NAME}"))
        except FileNotFoundError:
            return None

    def remote_hash(self, url: str) -> str | None:
        """The content hash of what ``url`` holds, as zoopipe recorded it when pushing.

        None when nothing is there, or when it was not written by a zoopipe push.
        """
        path = self._path(url)
        manifest = self._manifest(path)
        if manifest is not None:
            return manifest["hash"]
        return self._object_hash(path)

    # ------------------------------------------------------------------ push

    def push(self, local_path: str | os.PathLike[str], remote_url: str) -> str:
        source = Path(local_path)
        path = self._path(remote_url)
        if not source.exists():
            raise FileNotFoundError(f"cannot push {source} to {remote_url}: {source} does not exist")
        self.fs.invalidate_cache()
        if source.is_dir():
            return self._push_directory(source, path)
        digest = file_hash(source)
        if self._object_hash(path) != digest:
            self.fs.put_file(str(source), path, Metadata={HASH_METADATA: digest})
        # The URL now names a file: a directory pushed there before is removed.
        self._delete_prefix(path, keep=set())
        return digest

    def _push_directory(self, source: Path, path: str) -> str:
        if (source / MANIFEST_NAME).exists():
            raise ValueError(
                f"cannot push {source}: it contains {MANIFEST_NAME}, the name zoopipe uses for its "
                "manifest on S3; rename that file"
            )
        digest = content_hash(source)
        old = self._manifest(path)
        remote = self._relative_objects(path)
        local = {
            file.relative_to(source).as_posix(): file for file in sorted(source.rglob("*")) if file.is_file()
        }
        if old is not None and old["hash"] == digest and set(old["files"]) <= remote:
            return digest
        hashes: dict[str, str] = {}
        for relative, file in local.items():
            hashes[relative] = file_hash(file)
            known = (old or {}).get("files", {}).get(relative)
            if known == hashes[relative] and relative in remote:
                continue
            self.fs.put_file(str(file), f"{path}/{relative}", Metadata={HASH_METADATA: hashes[relative]})
        manifest = {"version": 1, "hash": digest, "files": hashes}
        self.fs.pipe_file(f"{path}/{MANIFEST_NAME}", json.dumps(manifest, indent=1, sort_keys=True).encode())
        self._delete_prefix(path, keep=set(local) | {MANIFEST_NAME})
        if self.fs.isfile(path):  # the URL named a file before: a directory replaces it
            self.fs.rm_file(path)
        self.fs.invalidate_cache()
        return digest

    def _relative_objects(self, path: str) -> set[str]:
        prefix = path + "/"
        return {key[len(prefix) :] for key in self.fs.find(prefix) if key.startswith(prefix)}

    def _delete_prefix(self, path: str, keep: set[str]) -> None:
        stale = [f"{path}/{relative}" for relative in self._relative_objects(path) if relative not in keep]
        if stale:
            self.fs.rm(stale)
        self.fs.invalidate_cache()

    # ------------------------------------------------------------------ pull

    def pull(self, remote_url: str, local_path: str | os.PathLike[str]) -> str:
        path = self._path(remote_url)
        destination = Path(local_path)
        self.fs.invalidate_cache()
        if self.fs.isfile(path):
            return self._pull_file(remote_url, path, destination)
        if self.fs.isdir(path):
            return self._pull_directory(remote_url, path, destination)
        raise FileNotFoundError(
            f"cannot pull {remote_url}: no object or prefix by that name; check the URL and the "
            "credentials and endpoint configured for S3"
        )

    def _pull_file(self, remote_url: str, path: str, destination: Path) -> str:
        expected = self._object_hash(path)
        if expected is not None and destination.is_file() and file_hash(destination) == expected:
            return expected
        destination.parent.mkdir(parents=True, exist_ok=True)
        temporary = temporary_beside(destination)
        try:
            self.fs.get_file(path, str(temporary))
            digest = file_hash(temporary)
            _check(remote_url, expected, digest)
            swap_in(temporary, destination)
        except BaseException:
            remove_path(temporary)
            raise
        return digest

    def _pull_directory(self, remote_url: str, path: str, destination: Path) -> str:
        manifest = self._manifest(path)
        if manifest is not None:
            if destination.is_dir() and content_hash(destination) == manifest["hash"]:
                return manifest["hash"]
            files: dict[str, str | None] = dict(manifest["files"])
        else:  # a prefix written by something else: take every object as it is
            files = {relative: None for relative in self._relative_objects(path)}
        destination.parent.mkdir(parents=True, exist_ok=True)
        temporary = temporary_beside(destination)
        try:
            temporary.mkdir()
            for relative, expected in sorted(files.items()):
                target = temporary.joinpath(*PurePosixPath(relative).parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                existing = destination.joinpath(*PurePosixPath(relative).parts)
                if expected is not None and existing.is_file() and file_hash(existing) == expected:
                    shutil.copy2(existing, target)
                    continue
                try:
                    self.fs.get_file(f"{path}/{relative}", str(target))
                except FileNotFoundError as exc:
                    raise FileNotFoundError(
                        f"cannot pull {remote_url}: its manifest lists {relative}, which is missing; "
                        "a push may be running or was interrupted: push again, then pull"
                    ) from exc
                _check(f"{remote_url}/{relative}", expected, file_hash(target))
            digest = content_hash(temporary)
            if manifest is not None:
                _check(remote_url, manifest["hash"], digest)
            swap_in(temporary, destination)
        except BaseException:
            remove_path(temporary)
            raise
        return digest


def _configured_endpoint() -> str | None:
    """The S3 endpoint this process is configured with, if not AWS's own."""
    import fsspec.config

    for variable in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        if os.environ.get(variable):
            return os.environ[variable]
    configured = fsspec.config.conf.get("s3", {})
    endpoint = (configured.get("client_kwargs") or {}).get("endpoint_url") or configured.get("endpoint_url")
    return str(endpoint) if endpoint else None


def _check(url: str, expected: str | None, actual: str) -> None:
    if expected is not None and expected != actual:
        raise OSError(
            f"pulled {url} but its content hash is {actual[:12]}..., not {expected[:12]}... as "
            "recorded when it was pushed; it is probably being pushed right now: pull again later"
        )


__all__ = ["HASH_METADATA", "MANIFEST_NAME", "S3Syncer", "S3Upload"]
