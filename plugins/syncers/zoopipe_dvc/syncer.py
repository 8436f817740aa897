"""The ``dvc`` syncer: a content store on the DVC repository's own remote.

``dvc`` (or ``dvc://``) names the repository's default remote, ``dvc://<name>`` a named one. The
remote is read from DVC's own configuration (``dvc.config.Config``: the system and global
configs, ``.dvc/config`` and ``.dvc/config.local``, in the order DVC merges them), and its
settings become fsspec storage options. Objects go where ``dvc push`` puts them
(``<remote>/files/md5/<2>/<30>``, a directory's listing as ``<md5>.dir``), named by the same
hashes (:class:`zoopipe_core.syncers.Manifest`), so what an offloaded run stored there ``dvc push``
finds already stored.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from zoopipe_core.syncers import (
    DIR_SUFFIX,
    ContentStore,
    FileEntry,
    HashCache,
    Manifest,
    Syncer,
    redacted,
)

#: The URL scheme of the syncer: ``dvc://<remote name>``; ``dvc`` or ``dvc://`` is the default remote.
SCHEME = "dvc"

# DVC's S3 remote settings -> s3fs's options, as dvc-s3 maps them (dvc_s3.S3FileSystem).
_S3_OPTIONS = {
    "access_key_id": "key",
    "secret_access_key": "secret",
    "session_token": "token",
    "profile": "profile",
}
_S3_CLIENT_KWARGS = {"endpointurl": "endpoint_url", "region": "region_name", "ssl_verify": "verify"}
_S3_CONFIG_KWARGS = {"read_timeout": "read_timeout", "connect_timeout": "connect_timeout"}
_S3_ADDITIONAL_KWARGS = {
    "sse": "ServerSideEncryption",
    "sse_kms_key_id": "SSEKMSKeyId",
    "sse_customer_algorithm": "SSECustomerAlgorithm",
    "acl": "ACL",
    "grant_read": "GrantRead",
    "grant_read_acp": "GrantReadACP",
    "grant_write_acp": "GrantWriteACP",
    "grant_full_control": "GrantFullControl",
}
# Settings that change neither where objects go nor how they are reached (parallelism, DVC's
# own checks, link types of a local cache, obsolete switches).
_IGNORED = {
    "url", "jobs", "checksum_jobs", "verify", "listobjects", "cache_regions", "no_traverse",
    "type", "protected", "shared", "slow_link_warning",
}  # fmt: skip
# Settings that DVC applies by setting an environment variable for its own process: a worker
# would not see it, so the user sets the variable where the work runs.
_ENVIRONMENT_ONLY = {"credentialpath": "AWS_SHARED_CREDENTIALS_FILE", "configpath": "AWS_CONFIG_FILE"}


class DvcRemoteError(ValueError):
    """The DVC repository or remote cannot be found, or its remote cannot hold a content store."""


@dataclasses.dataclass(frozen=True)
class DvcRemote:
    """A remote of a DVC repository, as zoopipe reaches it: its name, its URL (a local remote's
    path made absolute as DVC does, against the directory of the config file that names it), and
    fsspec storage options mapped from its settings. The repr never shows a secret.

    Example:
        >>> import pathlib, tempfile
        >>> repo = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (repo / ".dvc").mkdir()
        >>> _ = (repo / ".dvc" / "config").write_text(
        ...     "[core]\\n    remote = storage\\n"
        ...     "['remote \\"storage\\"']\\n    url = ../storage\\n"
        ...     "['remote \\"bucket\\"']\\n    url = s3://data/dvc\\n"
        ...     "    endpointurl = http://127.0.0.1:9000\\n    secret_access_key = abc\\n"
        ... )
        >>> remote = DvcRemote.resolve("dvc", repo=repo)
        >>> remote.name, remote.url == str(repo / "storage")
        ('storage', True)
        >>> DvcRemote.resolve("dvc://bucket", repo=repo)
        DvcRemote(name='bucket', url='s3://data/dvc', storage_options={'secret': '***', 'client_kwargs': {'endpoint_url': 'http://127.0.0.1:9000'}})
    """

    name: str
    url: str
    storage_options: dict[str, Any]
    repo: Path = dataclasses.field(compare=False)

    def __repr__(self) -> str:
        return (
            f"DvcRemote(name={self.name!r}, url={self.url!r}, "
            f"storage_options={redacted(self.storage_options)!r})"
        )

    @classmethod
    def resolve(cls, url: str = SCHEME, repo: str | os.PathLike[str] | None = None) -> DvcRemote:
        """The remote ``url`` names (``dvc``, ``dvc://``: the default one; ``dvc://<name>``) in the
        DVC repository at or above ``repo`` (default: the current directory)."""
        wanted = remote_name(url)
        root, config = _load_config(repo)
        remotes: dict[str, Any] = dict(config.get("remote", {}))
        known = ", ".join(sorted(remotes)) or "none"
        if wanted is None:
            wanted = config.get("core", {}).get("remote")
            if not wanted:
                raise DvcRemoteError(
                    f"the DVC repository {root} has no default remote (configured remotes: {known}); "
                    "set one with `dvc remote add -d <name> <url>`, or name one: storage='dvc://<name>'"
                )
        if wanted not in remotes:
            raise DvcRemoteError(
                f"the DVC repository {root} has no remote named {wanted!r} (configured remotes: "
                f"{known}); add it with `dvc remote add {wanted} <url>`, or name one of those"
            )
        settings = dict(remotes[wanted])
        remote_url, options = _storage(wanted, settings, root)
        return cls(wanted, remote_url, options, root)

    def content_store(self, **storage_options: Any) -> ContentStore:
        """The content store on this remote; ``storage_options`` override the mapped ones."""
        return ContentStore(self.url, _merged(self.storage_options, storage_options))


def remote_name(url: str | os.PathLike[str]) -> str | None:
    """The remote ``url`` names, None for the default one.

    Example:
        >>> remote_name("dvc"), remote_name("dvc://"), remote_name("dvc://backup")
        (None, None, 'backup')
    """
    text = os.fspath(url)
    if text.lower() == SCHEME:
        return None
    parts = urlsplit(text)
    if parts.scheme.lower() != SCHEME or parts.path.strip("/") or parts.query or parts.fragment:
        raise DvcRemoteError(
            f"{text!r} is not a DVC remote: write 'dvc' (or 'dvc://') for the repository's default "
            "remote, or 'dvc://<remote name>'"
        )
    return parts.netloc or None


def _load_config(repo: str | os.PathLike[str] | None) -> tuple[Path, Any]:
    from dvc.config import Config
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo

    start = Path(repo) if repo is not None else Path.cwd()
    try:
        dvc_dir = Repo.find_dvc_dir(os.fspath(start))
    except NotDvcRepoError:
        raise DvcRemoteError(
            f"no DVC repository at or above {start.resolve()} (no .dvc directory); run from inside "
            "the repository (as `dvc repro` does), pass storage_options={'repo': <its path>}, or "
            "create one with `dvc init`"
        ) from None
    return Path(dvc_dir).parent, Config(dvc_dir=dvc_dir)


def _storage(name: str, settings: dict[str, Any], root: Path) -> tuple[str, dict[str, Any]]:
    """The fsspec URL and storage options of the remote ``name`` with DVC ``settings``."""
    url = str(settings["url"])
    for layout in ("worktree", "version_aware"):
        if settings.get(layout):
            raise DvcRemoteError(
                f"the DVC remote {name!r} ({url}) is a {layout} remote, which keeps files under their "
                f"own paths, not by hash; give zoopipe a remote without `{layout} = true`"
            )
    scheme = match.group(1).lower() if (match := re.match(r"^(\w+)://", url)) else ""
    if scheme in ("", "file"):
        path = Path(url[len("file://") :] if scheme else url)
        if not path.is_absolute():  # DVC's config made it absolute already; for safety
            path = root / ".dvc" / path
        _check_known(name, settings, set())
        return os.path.normpath(path), {}
    if scheme in ("s3", "s3a"):
        return url, _s3_options(name, settings)
    raise DvcRemoteError(
        f"the DVC remote {name!r} is at {url}: the dvc syncer reads local and s3:// remotes; for "
        f"another store, pass its URL itself as storage= (with storage_options for its filesystem): "
        "the layout is the same"
    )


def _s3_options(name: str, settings: dict[str, Any]) -> dict[str, Any]:
    _check_known(
        name,
        settings,
        {*_S3_OPTIONS, *_S3_CLIENT_KWARGS, *_S3_CONFIG_KWARGS, *_S3_ADDITIONAL_KWARGS}
        | {"use_ssl", "allow_anonymous_login", "sse_customer_key"},
    )
    options: dict[str, Any] = {_S3_OPTIONS[k]: v for k, v in settings.items() if k in _S3_OPTIONS}
    if settings.get("use_ssl") is False:
        options["use_ssl"] = False
    if settings.get("allow_anonymous_login"):
        options["anon"] = True
    for section, table in (
        ("client_kwargs", _S3_CLIENT_KWARGS),
        ("config_kwargs", _S3_CONFIG_KWARGS),
        ("s3_additional_kwargs", _S3_ADDITIONAL_KWARGS),
    ):
        values = {table[k]: v for k, v in settings.items() if k in table}
        if values:
            options[section] = values
    if settings.get("sse_customer_key"):
        additional = options.setdefault("s3_additional_kwargs", {})
        additional["SSECustomerKey"] = base64.b64decode(settings["sse_customer_key"])
        additional.setdefault("SSECustomerAlgorithm", "AES256")
    return options


def _check_known(name: str, settings: dict[str, Any], mapped: set[str]) -> None:
    for key, value in settings.items():
        if key in _ENVIRONMENT_ONLY and value:
            raise DvcRemoteError(
                f"the DVC remote {name!r} sets `{key}`, which DVC applies by setting "
                f"{_ENVIRONMENT_ONLY[key]} in its own process; set {_ENVIRONMENT_ONLY[key]} in the "
                "environment of the driver and the workers instead, and remove the setting"
            )
        if key not in mapped and key not in _IGNORED and key not in ("worktree", "version_aware"):
            raise DvcRemoteError(
                f"the DVC remote {name!r} sets `{key}`, which the dvc syncer does not know how to "
                "apply; remove it, or pass the remote's URL as storage= with storage_options"
            )


def _merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


class DvcSyncer(Syncer):
    """Keeps content on the DVC repository's remote, in DVC 3's layout, under DVC's own hashes.

    ``storage="dvc"`` (or ``"dvc://<remote>"``) in :func:`zoopipe_core.remote` stores an
    offloaded run's inputs and outputs there, so ``dvc push`` after the run has nothing new to
    upload. The repository is found from the current directory upwards (``repo=`` to give
    it); the remote, its URL and credentials come from DVC's configuration, config.local
    and the global config included. Other ``storage_options`` override the mapped ones.

    ``push(path, "dvc://<remote>")`` stores a file or directory and returns its DVC hash (a
    directory's ends in ``.dir``); ``pull("dvc://<remote>/<hash>", path)`` brings it back.
    An empty remote name (``dvc:///<hash>``) is the default remote.

    Example:
        >>> import pathlib, tempfile
        >>> repo = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (repo / ".dvc").mkdir()
        >>> _ = (repo / ".dvc" / "config").write_text(
        ...     "[core]\\n    remote = storage\\n['remote \\"storage\\"']\\n    url = ../storage\\n"
        ... )
        >>> store = DvcSyncer.content_store("dvc", repo=repo)
        >>> store.url == str(repo / "storage")
        True
        >>> _ = (repo / "data").mkdir(); _ = (repo / "data" / "a.txt").write_text("hello\\n")
        >>> syncer = DvcSyncer(repo=repo)
        >>> digest = syncer.push(repo / "data", "dvc")
        >>> digest  # what `dvc add data` writes in data.dvc
        'b47e3488a546e2214c42aa9bec8396e2.dir'
        >>> sorted(p.relative_to(repo).as_posix() for p in (repo / "storage").rglob("*") if p.is_file())
        ['storage/files/md5/b1/946ac92492d2347c6235b4d2611184', 'storage/files/md5/b4/7e3488a546e2214c42aa9bec8396e2.dir']
        >>> syncer.pull(f"dvc:///{digest}", repo / "copy") == digest
        True
        >>> (repo / "copy" / "a.txt").read_text()
        'hello\\n'
    """

    name = "dvc"

    def __init__(self, repo: str | os.PathLike[str] | None = None, **storage_options: Any) -> None:
        self.repo = repo
        self.storage_options = storage_options

    @classmethod
    def content_store(cls, url: str, **storage_options: Any) -> ContentStore:
        """The content store on the remote ``url`` names (``dvc``, ``dvc://``: the default remote;
        ``dvc://<name>``) of the DVC repository at or above ``repo=`` (default: the current
        directory); the other ``storage_options`` override those read from DVC's config."""
        repo = storage_options.pop("repo", None)
        return DvcRemote.resolve(url, repo=repo).content_store(**storage_options)

    def _store(self, remote_url: str) -> ContentStore:
        return self.content_store(remote_url, repo=self.repo, **self.storage_options)

    def push(self, local_path: str | os.PathLike[str], remote_url: str) -> str:
        """Store ``local_path`` on the remote ``remote_url`` names; return its DVC hash."""
        source = Path(local_path)
        if not source.exists():
            raise FileNotFoundError(f"cannot push {source} to {remote_url}: {source} does not exist")
        store = self._store(remote_url)
        manifest = Manifest.of(source, HashCache())
        store.push(source, manifest)
        return manifest.hash

    def pull(self, remote_url: str, local_path: str | os.PathLike[str]) -> str:
        """Make ``local_path`` hold the content ``dvc://<remote>/<hash>`` names; return the hash."""
        parts = urlsplit(os.fspath(remote_url))
        digest = parts.path.strip("/")
        if parts.scheme.lower() != SCHEME or not re.fullmatch(r"[0-9a-f]{32}(\.dir)?", digest):
            raise DvcRemoteError(
                f"{remote_url!r} names no content: pull from 'dvc://<remote>/<md5>' (a file) or "
                "'dvc://<remote>/<md5>.dir' (a directory), the hash push returned; an empty "
                "remote name ('dvc:///<md5>') is the default remote"
            )
        store = self._store(f"{SCHEME}://{parts.netloc}")
        if digest.endswith(DIR_SUFFIX):
            manifest = store.read_manifest(digest)
        else:
            manifest = Manifest("file", (FileEntry("", digest, -1),))
        store.pull(manifest, local_path, HashCache())
        return digest


__all__ = ["SCHEME", "DvcRemote", "DvcRemoteError", "DvcSyncer", "remote_name"]
