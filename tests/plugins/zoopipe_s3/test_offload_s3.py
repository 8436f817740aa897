"""Offloaded calls through S3 (moto's server): the offload contract, and a store that cannot be
reached failing on the driver, before anything is submitted, without showing a secret."""

from __future__ import annotations

import logging

import pytest
from s3_server import S3Server, s3_keys

from zoopipe_core import Offload
from zoopipe_core.engines import MultiProcessEngine
from zoopipe_core.syncers import StorageError
from zoopipe_core.testing import offload_tasks as tasks
from zoopipe_core.testing.offload_contract import OffloadContract, tree


class TestOffloadThroughS3(OffloadContract):
    bucket = ""

    @pytest.fixture(autouse=True)
    def _bucket(self, s3_bucket: str) -> None:
        self.bucket = s3_bucket

    def make_engine(self) -> MultiProcessEngine:
        return MultiProcessEngine(max_workers=2)

    def make_storage(self) -> str:
        return f"s3://{self.bucket}/offload"


def test_objects_are_stored_in_dvc_layout(s3_server: S3Server, s3_bucket: str, tmp_path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("hello\n")
    with Offload(deps=["source"], outs=["target"], storage=f"s3://{s3_bucket}/runs") as offload:
        offload.call(tasks.copy_tree, data, tmp_path / "out", suffix="!")
    keys = s3_keys(s3_server, s3_bucket)
    assert "runs/files/md5/b1/946ac92492d2347c6235b4d2611184" in keys  # md5("hello\n")
    assert sum(key.endswith(".dir") for key in keys) == 2  # the input and the output directory
    assert tree(tmp_path / "out") == {"a.txt": b"hello\n!"}


def test_an_unreachable_store_fails_before_submitting_and_hides_secrets(
    tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "data").mkdir()
    engine = MultiProcessEngine(max_workers=1)
    offload = Offload(
        deps=["source"],
        outs=["target"],
        engine=engine,
        storage="s3://no-such-bucket/runs",
        storage_options={
            "client_kwargs": {"endpoint_url": "http://127.0.0.1:9"},
            "key": "AKIAZOOPIPESECRETKEY",
            "secret": "zoopipe-very-secret",
        },
    )
    # Our log lines at every level; botocore's own DEBUG lines print the access key id in
    # request headers, which a user turning on botocore's debugging asks for.
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="zoopipe")
    with pytest.raises(
        StorageError, match=r"cannot reach the content store s3://no-such-bucket/runs"
    ) as caught:
        offload.call(tasks.copy_tree, tmp_path / "data", tmp_path / "out")
    assert not engine.is_running
    for text in (str(caught.value), repr(offload), repr(offload.store), caplog.text):
        assert "AKIAZOOPIPESECRETKEY" not in text and "zoopipe-very-secret" not in text
    assert "***" in repr(offload.store)


def test_a_missing_bucket_is_a_clear_error(s3_server: S3Server, tmp_path) -> None:
    (tmp_path / "data").mkdir()
    offload = Offload(deps=["source"], outs=["target"], storage="s3://zoopipe-missing-bucket/runs")
    with pytest.raises(StorageError, match=r"zoopipe-missing-bucket/runs: FileNotFoundError") as caught:
        offload.call(tasks.copy_tree, tmp_path / "data", tmp_path / "out")
    assert "check the URL, that the bucket or directory exists" in str(caught.value)
    offload.close()


def test_many_objects_on_s3_only_missing_ones_are_sent(s3_server: S3Server, s3_bucket: str, tmp_path) -> None:
    """Past LOOKUPS_ONE_BY_ONE objects the store lists prefixes instead of a HEAD each."""
    from zoopipe_core.syncers import ContentStore, HashCache, Manifest

    data = tmp_path / "data"
    for index in range(150):
        path = data / f"d{index % 5}" / f"f{index}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"file {index}\n")
    store = ContentStore(f"s3://{s3_bucket}/cas", {"client_kwargs": {"endpoint_url": s3_server.endpoint_url}})
    cache = HashCache(tmp_path / "md5.sqlite")
    manifest = Manifest.of(data, cache)
    assert store.push(data, manifest) == manifest.size
    (data / "d3" / "f3.txt").write_text("changed\n")
    changed = Manifest.of(data, cache)
    assert len(store.missing(e.md5 for e in changed.files)) == 1
    assert store.push(data, changed) == len("changed\n")
    assert store.pull(changed, tmp_path / "copy", cache) == changed.size
    assert tree(tmp_path / "copy") == tree(data)


def test_the_generic_endpoint_variable_reaches_the_workers(
    s3_server: S3Server, s3_bucket: str, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWS_ENDPOINT_URL (not only AWS_ENDPOINT_URL_S3) names the server, and travels with the store."""
    import fsspec.config

    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
    monkeypatch.setitem(fsspec.config.conf, "s3", {})
    with Offload(deps=["source"], outs=["target"], storage=f"s3://{s3_bucket}/runs") as offload:
        assert offload.store.storage_options == {"client_kwargs": {"endpoint_url": s3_server.endpoint_url}}
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "x.txt").write_text("x")
        offload.call(tasks.copy_tree, tmp_path / "data", tmp_path / "out")
    assert tree(tmp_path / "out") == {"x.txt": b"x"}
