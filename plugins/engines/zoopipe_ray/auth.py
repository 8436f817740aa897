"""Ray's token authentication, checked before connecting: a clear error instead of a timeout.

A cluster started with ``RAY_AUTH_MODE=token`` (the default of ``ray start`` in Ray 2.60) refuses
a driver without its token, and ``ray.init`` then retries for about 20 s before a bare "Failed to
connect to Ray cluster". :func:`check_token_auth` asks the cluster's GCS one question first (in
tens of milliseconds) and, when it refuses, says why and how to pass the token.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

#: How a driver passes the token, for every message that needs it.
TOKEN_ADVICE = (
    "set RAY_AUTH_MODE=token and the cluster's token in RAY_AUTH_TOKEN (or in a file named by "
    "RAY_AUTH_TOKEN_PATH, or ~/.ray/auth_token); `ray get-auth-token` on the head node prints it"
)


def local_token() -> str | None:
    """The token this process would send: ``RAY_AUTH_TOKEN``, else the file named by
    ``RAY_AUTH_TOKEN_PATH``, else ``~/.ray/auth_token``; None when there is none.

    Example:
        >>> import os
        >>> os.environ["RAY_AUTH_TOKEN"] = "abc123"
        >>> local_token()
        'abc123'
        >>> del os.environ["RAY_AUTH_TOKEN"]
    """
    token = os.environ.get("RAY_AUTH_TOKEN", "").strip()
    if token:
        return token
    named = os.environ.get("RAY_AUTH_TOKEN_PATH")
    path = Path(named).expanduser() if named else Path.home() / ".ray" / "auth_token"
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def check_token_auth(address: str, host: str, port: int, timeout: float) -> None:
    """ConnectionError when the Ray cluster at ``host:port`` uses token authentication and this
    process has no token it accepts. Any other answer (or no grpc) is left to ``ray.init``."""
    refused = _gcs_refuses(host, port, timeout, token=None)
    if not refused:
        return
    token = local_token()
    mode = os.environ.get("RAY_AUTH_MODE", "")
    if token is None:
        said = "the cluster uses token authentication and this process has no token"
    elif mode != "token":
        said = (
            "the cluster uses token authentication, and this process has a token but "
            f"RAY_AUTH_MODE is {mode or 'unset'!r}, so Ray would not send it"
        )
    elif _gcs_refuses(host, port, timeout, token=token):
        said = "the cluster uses token authentication and refuses this process's token"
    else:
        return
    raise ConnectionError(
        f"RayEngine could not connect to Ray at {address!r}: {said}. To connect, {TOKEN_ADVICE}"
    )


def _gcs_refuses(host: str, port: int, timeout: float, token: str | None) -> bool:
    """True when the GCS answers a cluster-id request with UNAUTHENTICATED."""
    try:  # imported by name: neither ships type stubs
        grpc: Any = importlib.import_module("grpc")
        gcs_service_pb2: Any = importlib.import_module("ray.core.generated.gcs_service_pb2")
        gcs_service_pb2_grpc: Any = importlib.import_module("ray.core.generated.gcs_service_pb2_grpc")
    except ImportError:
        return False
    metadata = [("authorization", f"Bearer {token}")] if token else None
    with grpc.insecure_channel(f"{host}:{port}") as channel:
        stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
        try:
            stub.GetClusterId(gcs_service_pb2.GetClusterIdRequest(), timeout=timeout, metadata=metadata)
        except grpc.RpcError as exc:
            return bool(exc.code() == grpc.StatusCode.UNAUTHENTICATED)
    return False
