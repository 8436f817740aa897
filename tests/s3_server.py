"""A real S3 endpoint for the test suite: moto's threaded server on 127.0.0.1.

s3fs and botocore talk to it over HTTP exactly as they would to AWS; nothing in boto is patched.
The session fixture `s3_server` starts it once (on a free port), points fsspec's ``s3``
configuration and the AWS environment variables at it, and stops it at the end. `s3_bucket`
gives each test a fresh, empty bucket.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

# Dummy credentials: moto accepts any, and they keep a developer's real AWS account out of reach.
_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "zoopipe-test",
    "AWS_SECRET_ACCESS_KEY": "zoopipe-test",
    "AWS_SESSION_TOKEN": "zoopipe-test",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


@dataclass(frozen=True)
class S3Server:
    """Where the test S3 server listens, and an s3fs filesystem bound to it."""

    endpoint_url: str

    def filesystem(self) -> Any:
        """A fresh (uncached) s3fs filesystem talking to the server."""
        import s3fs

        return s3fs.S3FileSystem(client_kwargs={"endpoint_url": self.endpoint_url}, skip_instance_cache=True)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server on 127.0.0.1, configured as the endpoint of every s3:// URL."""
    import fsspec.config
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request in test output
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)  # 0: a free port
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    saved_env = {name: os.environ.get(name) for name in [*_AWS_ENV, "AWS_ENDPOINT_URL_S3"]}
    saved_conf = fsspec.config.conf.get("s3")
    os.environ.update(_AWS_ENV)
    os.environ["AWS_ENDPOINT_URL_S3"] = endpoint
    fsspec.config.conf["s3"] = {"client_kwargs": {"endpoint_url": endpoint}}
    try:
        yield S3Server(endpoint)
    finally:
        server.stop()
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if saved_conf is None:
            fsspec.config.conf.pop("s3", None)
        else:
            fsspec.config.conf["s3"] = saved_conf


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> Iterator[str]:
    """The name of a new, empty bucket on the test server; removed after the test."""
    fs = s3_server.filesystem()
    name = f"zoopipe-{uuid.uuid4().hex[:12]}"
    fs.mkdir(name)
    yield name
    fs.rm(name, recursive=True)
    fs.invalidate_cache()


def s3_keys(server: S3Server, bucket: str) -> list[str]:
    """Every object key in ``bucket``, sorted, read fresh from the server."""
    fs = server.filesystem()
    return sorted(path[len(bucket) + 1 :] for path in fs.find(bucket))


def s3_pending_uploads(server: S3Server, bucket: str) -> list[str]:
    """Keys of multipart uploads started in ``bucket`` and neither completed nor aborted."""
    import boto3

    client = boto3.client("s3", endpoint_url=server.endpoint_url)
    return sorted(u["Key"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []))


@pytest.fixture
def s3_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any], Any]]:
    """Every S3 call this process makes through s3fs, with its arguments and response (every
    s3fs instance and thread of this process; a worker process of an engine records its own
    calls in its own copy, which the test never sees: what is here is the driver's)."""
    import s3fs
    from fsspec.asyn import sync_wrapper

    calls: list[tuple[str, dict[str, Any], Any]] = []
    original = s3fs.S3FileSystem._call_s3

    async def recording(self: Any, method: str, *args: Any, **kwargs: Any) -> Any:
        response = await original(self, method, *args, **kwargs)
        calls.append((method, kwargs, response))
        return response

    monkeypatch.setattr(s3fs.S3FileSystem, "_call_s3", recording)
    monkeypatch.setattr(s3fs.S3FileSystem, "call_s3", sync_wrapper(recording))  # binds the original
    return calls


def bytes_read(calls: list[tuple[str, dict[str, Any], Any]]) -> list[tuple[str | None, int]]:
    """The range and byte count of each GET."""
    return [(kw.get("Range"), resp["ContentLength"]) for method, kw, resp in calls if method == "get_object"]


def worker_environment(server: S3Server) -> dict[str, str]:
    """The environment variables that point a cluster's worker processes (Ray, Dask, started
    before the server) at the test server: pass them with
    ``engine.prepare(WorkerEnvironment(env_vars=...))``."""
    return {**_AWS_ENV, "AWS_ENDPOINT_URL_S3": server.endpoint_url}
