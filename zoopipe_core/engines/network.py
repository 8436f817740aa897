"""Cluster addresses, for engines that connect to one: parse ``host:port`` and check, before
connecting, that something answers there, so a wrong address fails fast with a clear message."""

from __future__ import annotations

import socket


def host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of a ``host:port`` or ``scheme://host:port`` address; None without a port.

    Example:
        >>> host_port("tcp://10.0.0.5:8786"), host_port("[::1]:6379"), host_port("auto")
        (('10.0.0.5', 8786), ('::1', 6379), None)
    """
    target = address.split("://", 1)[-1]
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def check_reachable(engine: str, what: str, address: str, timeout: float, advice: str) -> None:
    """Raise ConnectionError unless a TCP connection to ``address`` opens within ``timeout`` s.

    The message says that ``engine`` could not reach ``what`` (``"a Dask scheduler"``) at
    ``address``, why, and ``advice``. An address without a port is not checked.

    Example:
        >>> check_reachable("MyEngine", "a cluster", "127.0.0.1:1", 1.0, "Start it first")
        Traceback (most recent call last):
        ...
        ConnectionError: MyEngine could not reach a cluster at '127.0.0.1:1' within 1 s ...
    """
    target = host_port(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=timeout):
            pass
    except OSError as exc:
        raise ConnectionError(
            f"{engine} could not reach {what} at {address!r} within {timeout:g} s "
            f"({type(exc).__name__}: {exc}). {advice}"
        ) from exc
