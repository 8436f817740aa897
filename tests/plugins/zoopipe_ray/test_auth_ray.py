"""A Ray cluster with token authentication (`ray start --head` with RAY_AUTH_MODE=token, started
here in a session of its own): a driver without the cluster's token fails at once with a message
that says so and how to pass the token, not after Ray's 20 s of retries."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from zoopipe_core.testing import wait_for

CONNECT = """
import json, sys, time
from zoopipe_ray import RayEngine
began = time.monotonic()
try:
    with RayEngine(address=sys.argv[1], environment=None, warm_workers=0, connect_timeout=10):
        outcome = ["started", ""]
except BaseException as exc:
    outcome = [type(exc).__name__, str(exc)]
print(json.dumps(outcome + [time.monotonic() - began]))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _end_processes_of(temp_dir: str) -> None:
    import psutil

    for process in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if any(temp_dir in part for part in process.info["cmdline"] or ()):
                process.kill()


@pytest.fixture(scope="module")
def token_cluster(tmp_path_factory):
    """(GCS address, token) of a head node of 0 CPUs that requires its token."""
    token = secrets.token_hex(16)
    port = _free_port()
    temp_dir = tempfile.mkdtemp(prefix="zrt", dir="/tmp")  # short: Ray's socket paths
    log = tmp_path_factory.mktemp("ray-head") / "head.log"
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    command = [
        str(Path(sys.executable).parent / "ray"),
        "start",
        "--head",
        f"--port={port}",
        "--num-cpus=0",
        "--include-dashboard=false",
        f"--temp-dir={temp_dir}",
        "--block",
    ]
    with open(log, "w") as out:
        head = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:

        def gcs_listens() -> bool:
            if head.poll() is not None:
                raise AssertionError(f"ray start exited: {log.read_text()[-2000:]}")
            with socket.socket() as sock:
                return sock.connect_ex(("127.0.0.1", port)) == 0

        wait_for(gcs_listens, "the token-auth head's GCS to listen", timeout=90)
        yield f"127.0.0.1:{port}", token
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)
        head.wait(timeout=30)
        _end_processes_of(temp_dir)


def connect(address: str, home: Path, **env_vars: str) -> tuple[str, str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_AUTH", "RAY_ADDRESS"))}
    env.update(HOME=str(home), **env_vars)  # no ~/.ray/auth_token of this machine's user
    run = subprocess.run(
        [sys.executable, "-c", CONNECT, address], env=env, capture_output=True, text=True, timeout=180
    )
    assert run.returncode == 0, run.stderr[-3000:]
    kind, message, took = json.loads(run.stdout.strip().splitlines()[-1])
    return kind, message, took


def test_without_the_token_the_error_says_so_at_once(token_cluster, tmp_path):
    address, _ = token_cluster
    kind, message, took = connect(address, tmp_path)
    assert kind == "ConnectionError"
    assert "uses token authentication and this process has no token" in message
    assert "RAY_AUTH_MODE=token" in message and "RAY_AUTH_TOKEN" in message
    assert took < 10, took  # ray.init alone retries for about 20 s


def test_a_token_without_token_mode_or_a_wrong_token_is_named(token_cluster, tmp_path):
    address, token = token_cluster
    kind, message, _ = connect(address, tmp_path, RAY_AUTH_TOKEN=token)
    assert kind == "ConnectionError" and "RAY_AUTH_MODE is 'unset'" in message
    kind, message, _ = connect(address, tmp_path, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN="0" * 32)
    assert kind == "ConnectionError" and "refuses this process's token" in message


def test_with_the_token_the_engine_connects(token_cluster, tmp_path):
    address, token = token_cluster
    began = time.monotonic()
    kind, message, _ = connect(address, tmp_path, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
    assert (kind, message) == ("started", ""), f"{message} after {time.monotonic() - began:.1f} s"
