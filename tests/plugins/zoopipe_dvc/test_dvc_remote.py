"""The dvc syncer finds the DVC repository and reads its remote from DVC's own configuration
(written here by the real `dvc remote` commands): the default or a named remote, config.local
and the global config, a relative local path resolved as DVC resolves it, an S3 remote's settings
mapped to s3fs options (checked against moto's S3 server), and clear errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from dvc_cli import dvc_in_process
from zoopipe_dvc import DvcRemote, DvcRemoteError, DvcSyncer

from zoopipe_core import Offload, plugins
from zoopipe_core.syncers import ContentStore, HashCache, Manifest


@pytest.fixture(autouse=True)
def isolated_dvc_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DVC's global and system configs in empty folders of this test (as dvc_env sets them for
    the `dvc` command)."""
    monkeypatch.setenv("DVC_GLOBAL_CONFIG_DIR", str(tmp_path / "dvc-global"))
    monkeypatch.setenv("DVC_SYSTEM_CONFIG_DIR", str(tmp_path / "dvc-system"))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "project").mkdir()
    dvc_in_process(tmp_path / "project", "init", "--no-scm", "-q")
    return tmp_path / "project"


def test_the_default_local_remote_relative_to_the_dvc_directory(repo: Path, monkeypatch) -> None:
    dvc_in_process(repo, "remote", "add", "-d", "storage", "../storage")  # as typed at the repository's root
    (repo / "src" / "deep").mkdir(parents=True)
    monkeypatch.chdir(repo / "src" / "deep")  # found from a subdirectory, upwards
    for url in ("dvc", "dvc://", "DVC"):
        store = DvcSyncer.content_store(url)
        assert store == ContentStore(str(repo.parent / "storage")), url
    remote = DvcRemote.resolve("dvc")
    assert (remote.name, remote.repo, remote.storage_options) == ("storage", repo, {})


def test_the_repository_given_as_an_option(repo: Path, tmp_path: Path, monkeypatch) -> None:
    dvc_in_process(repo, "remote", "add", "-d", "storage", str(tmp_path / "abs-storage"))
    monkeypatch.chdir(tmp_path)  # not inside the repository
    store = DvcSyncer.content_store("dvc", repo=repo / ".dvc")
    assert store.url == str(tmp_path / "abs-storage")


def test_a_named_remote_config_local_and_the_global_config(repo: Path, tmp_path: Path, monkeypatch) -> None:
    dvc_in_process(repo, "remote", "add", "-d", "storage", "../storage")
    dvc_in_process(repo, "remote", "add", "backup", "../backup")
    monkeypatch.chdir(repo)
    assert DvcSyncer.content_store("dvc://backup").url == str(repo.parent / "backup")
    # .dvc/config.local overrides .dvc/config, as in DVC (a relative path: against .dvc/)
    dvc_in_process(repo, "remote", "modify", "--local", "backup", "url", "../elsewhere")
    assert DvcSyncer.content_store("dvc://backup").url == str(repo.parent / "elsewhere")
    # a remote of the user's global config, and the default remote chosen in config.local
    dvc_in_process(repo, "remote", "add", "--global", "shared", str(tmp_path / "team-store"))
    dvc_in_process(repo, "remote", "default", "--local", "shared")
    remote = DvcRemote.resolve("dvc", repo=repo)
    assert (remote.name, remote.url) == ("shared", str(tmp_path / "team-store"))


def test_an_s3_remote_maps_to_s3fs_options(repo: Path, monkeypatch) -> None:
    dvc_in_process(repo, "remote", "add", "-d", "s3store", "s3://bucket/dvc/store")
    for option, value in [
        ("endpointurl", "http://127.0.0.1:9"),
        ("region", "eu-west-3"),
        ("profile", "team"),
        ("read_timeout", "30"),
        ("sse", "AES256"),
        ("jobs", "4"),  # parallelism of `dvc push`: nothing to map
    ]:
        dvc_in_process(repo, "remote", "modify", "s3store", option, value)
    for option, value in [
        ("access_key_id", "AKIAEXAMPLE"),
        ("secret_access_key", "s3cr3t-value"),
        ("session_token", "t0ken-value"),
    ]:
        dvc_in_process(repo, "remote", "modify", "--local", "s3store", option, value)
    monkeypatch.chdir(repo)
    store = DvcSyncer.content_store("dvc")
    assert store.url == "s3://bucket/dvc/store"
    assert store.storage_options == {
        "key": "AKIAEXAMPLE",
        "secret": "s3cr3t-value",
        "token": "t0ken-value",
        "profile": "team",
        "client_kwargs": {"endpoint_url": "http://127.0.0.1:9", "region_name": "eu-west-3"},
        "config_kwargs": {"read_timeout": 30},
        "s3_additional_kwargs": {"ServerSideEncryption": "AES256"},
    }
    # given options override the mapped ones, nested dicts merged
    store = DvcSyncer.content_store("dvc", client_kwargs={"endpoint_url": "http://other"}, profile="me")
    assert store.storage_options["client_kwargs"] == {
        "endpoint_url": "http://other",
        "region_name": "eu-west-3",
    }
    assert store.storage_options["profile"] == "me"
    # secrets never show
    for text in (repr(store), repr(DvcRemote.resolve("dvc"))):
        assert "s3cr3t" not in text and "t0ken" not in text and "AKIAEXAMPLE" not in text, text
    assert pickle.loads(pickle.dumps(store)) == store  # travels to workers as URL and options


def test_an_s3_remote_on_moto_stores_in_dvc_layout(repo: Path, s3_server, s3_bucket, monkeypatch) -> None:
    """The endpoint and credentials come from DVC's config alone: neither fsspec's configuration
    nor AWS_ENDPOINT_URL_S3 (which the s3_server fixture sets) point at the server."""
    import fsspec.config

    monkeypatch.delitem(fsspec.config.conf, "s3", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    dvc_in_process(repo, "remote", "add", "-d", "s3store", f"s3://{s3_bucket}/store")
    dvc_in_process(repo, "remote", "modify", "s3store", "endpointurl", s3_server.endpoint_url)
    dvc_in_process(repo, "remote", "modify", "--local", "s3store", "access_key_id", "dvc-config-key")
    dvc_in_process(repo, "remote", "modify", "--local", "s3store", "secret_access_key", "dvc-config-secret")
    (repo / "data").mkdir()
    (repo / "data" / "a.txt").write_text("hello\n")
    store = DvcSyncer.content_store("dvc", repo=repo)
    store.check_reachable()
    manifest = Manifest.of(repo / "data", HashCache(repo.parent / "md5.sqlite"))
    assert store.push(repo / "data", manifest) == 6
    import s3fs

    listing = s3fs.S3FileSystem(key="k", secret="s", client_kwargs={"endpoint_url": s3_server.endpoint_url})
    keys = sorted(key.split("/", 1)[1] for key in listing.find(s3_bucket))
    assert keys == [
        "store/files/md5/b1/946ac92492d2347c6235b4d2611184",
        f"store/files/md5/{manifest.hash[:2]}/{manifest.hash[2:]}",
    ]


def test_the_syncer_is_registered_for_dvc_urls_and_offload_uses_it(repo: Path, monkeypatch) -> None:
    dvc_in_process(repo, "remote", "add", "-d", "storage", "../storage")
    monkeypatch.chdir(repo)
    assert plugins.syncer_name_for_url("dvc://storage") == "dvc"
    assert plugins.get_syncer_class_for_url("dvc://") is DvcSyncer
    for storage in ("dvc", "dvc://", "dvc://storage"):
        assert Offload(storage=storage).store == ContentStore(str(repo.parent / "storage")), storage


def test_push_and_pull_by_dvc_hash(repo: Path, tmp_path: Path) -> None:
    dvc_in_process(repo, "remote", "add", "-d", "storage", "../storage")
    (repo / "data" / "sub").mkdir(parents=True)
    (repo / "data" / "sub" / "ü.txt").write_text("x\n")
    (repo / "one.bin").write_bytes(b"\x00" * 10)
    syncer = DvcSyncer(repo=repo)
    digest = syncer.push(repo / "data", "dvc://storage")
    dvc_in_process(repo, "add", "-q", "data", "one.bin")  # what DVC itself names them
    assert f"md5: {digest}\n" in (repo / "data.dvc").read_text()
    file_digest = syncer.push(repo / "one.bin", "dvc")
    assert f"md5: {file_digest}\n" in (repo / "one.bin.dvc").read_text()
    assert syncer.pull(f"dvc://storage/{digest}", tmp_path / "copy") == digest
    assert (tmp_path / "copy" / "sub" / "ü.txt").read_text() == "x\n"
    assert syncer.pull(f"dvc:///{file_digest}", tmp_path / "one") == file_digest
    assert (tmp_path / "one").read_bytes() == b"\x00" * 10
    with pytest.raises(DvcRemoteError, match=r"names no content: pull from 'dvc://<remote>/<md5>'"):
        syncer.pull("dvc://storage/data", tmp_path / "x")


# --------------------------------------------------------------------------- errors


def test_outside_a_dvc_repository(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DvcRemoteError) as error:
        DvcSyncer.content_store("dvc")
    message = str(error.value)
    assert f"no DVC repository at or above {tmp_path.resolve()}" in message
    assert "storage_options={'repo': <its path>}" in message and "`dvc init`" in message


def test_no_default_remote_lists_the_configured_ones(repo: Path) -> None:
    with pytest.raises(DvcRemoteError, match=r"has no default remote \(configured remotes: none\)"):
        DvcSyncer.content_store("dvc", repo=repo)
    dvc_in_process(repo, "remote", "add", "b-remote", "../b")
    dvc_in_process(repo, "remote", "add", "a-remote", "../a")
    with pytest.raises(DvcRemoteError) as error:
        DvcSyncer.content_store("dvc://", repo=repo)
    assert str(error.value) == (
        f"the DVC repository {repo} has no default remote (configured remotes: a-remote, b-remote); "
        "set one with `dvc remote add -d <name> <url>`, or name one: storage='dvc://<name>'"
    )


def test_an_unknown_remote_name_lists_the_configured_ones(repo: Path) -> None:
    dvc_in_process(repo, "remote", "add", "-d", "storage", "../storage")
    dvc_in_process(repo, "remote", "add", "backup", "../backup")
    with pytest.raises(DvcRemoteError) as error:
        DvcSyncer.content_store("dvc://bakup", repo=repo)
    assert str(error.value) == (
        f"the DVC repository {repo} has no remote named 'bakup' (configured remotes: backup, storage); "
        "add it with `dvc remote add bakup <url>`, or name one of those"
    )


@pytest.mark.parametrize("url", ["dvc://storage/some/path", "s3://bucket", "dvc://storage?x=1"])
def test_a_url_that_names_no_remote(repo: Path, url: str) -> None:
    with pytest.raises(DvcRemoteError, match=r"is not a DVC remote: write 'dvc' \(or 'dvc://'\)"):
        DvcSyncer.content_store(url, repo=repo)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ([("worktree", "true")], r"is a worktree remote, which keeps files under their own paths"),
        ([("version_aware", "true")], r"is a version_aware remote"),
        ([("credentialpath", "/etc/creds")], r"set AWS_SHARED_CREDENTIALS_FILE in the environment"),
        ([("configpath", "/etc/aws")], r"set AWS_CONFIG_FILE in the environment"),
    ],
)
def test_s3_settings_zoopipe_cannot_apply(repo: Path, settings, expected: str) -> None:
    dvc_in_process(repo, "remote", "add", "-d", "s3store", "s3://bucket/store")
    for option, value in settings:
        dvc_in_process(repo, "remote", "modify", "s3store", option, value)
    with pytest.raises(DvcRemoteError, match=expected):
        DvcSyncer.content_store("dvc", repo=repo)


def test_a_remote_of_another_kind(repo: Path) -> None:
    dvc_in_process(repo, "remote", "add", "-d", "gcs", "gs://bucket/store")
    with pytest.raises(
        DvcRemoteError, match=r"the dvc syncer reads local and s3:// remotes; .* pass its URL"
    ):
        DvcSyncer.content_store("dvc", repo=repo)
