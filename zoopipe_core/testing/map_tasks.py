"""The functions the parallel-map contract maps: module-level, so every engine can ship them.

They synchronise with the driver through files in a directory both can reach.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from zoopipe_core.testing.sync import touch


class NeedsTwoArguments(Exception):
    """An exception that does not pickle: its ``__init__`` needs two arguments, pickle gives one."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"code {code}: {detail}")
        self.code = code
        self.lock = threading.Lock()


def square(x: int) -> int:
    return x * x


def power(base: int, exp: int = 2) -> int:
    return int(base**exp)


def fail_on(x: int, bad: tuple[int, ...] = (3,)) -> int:
    if x in bad:
        raise ValueError(f"item {x} is bad")
    return x * x


def fail_unpicklable(x: int) -> int:
    if x == 1:
        raise NeedsTwoArguments(7, "no pickle")
    return x


def hang_on(x: int, hang: tuple[int, ...] = (), seconds: float = 30.0) -> int:
    """Return ``x``; the items in ``hang`` block in one long sleep first (a stuck call)."""
    if x in hang:
        time.sleep(seconds)
    return x


def record_call(directory: str, x: int, seconds: float = 0.0) -> int:
    """Leave a file per call (``call-<x>-<pid>-<n>``), sleep ``seconds``, return ``x * x``."""
    folder = Path(directory)
    name = f"call-{x}-{os.getpid()}-{time.monotonic_ns()}"
    touch(folder / name)
    time.sleep(seconds)
    return x * x


def flaky(directory: str, x: int, failures: int) -> int:
    """Fail with ConnectionError the first ``failures`` calls for ``x``, then return ``x``."""
    folder = Path(directory)
    calls = len(list(folder.glob(f"flaky-{x}-*")))
    touch(folder / f"flaky-{x}-{calls}")
    if calls < failures:
        raise ConnectionError(f"attempt {calls + 1} for item {x} failed")
    return x


def wait_for_a_later_item(directory: str, x: int) -> int:
    """Item 0 returns once another item has ended (or after 60 s); others mark that they ended."""
    folder = Path(directory)
    if x != 0:
        touch(folder / f"ended-{x}")
        return x
    deadline = time.monotonic() + 60
    while not any(folder.glob("ended-*")) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.5)  # the ended item's result reaches the driver first, however loaded the machine
    return x


def run_until_stopped(directory: str, x: int) -> int:
    """Item 0 returns at once; others mark that they started, run until the engine stops them,
    and mark that they stopped."""
    if x == 0:
        return 0
    folder = Path(directory)
    try:  # entered before "started" is written: a stop right after it still marks "stopped"
        touch(folder / f"started-{x}")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.02)
        return x
    finally:
        touch(folder / f"stopped-{x}")


def kill_worker_on(x: int, bad: int) -> int:
    """The item ``bad`` kills its own worker process; others return ``x``."""
    if x == bad:
        os._exit(3)
    return x


class CountedLoads:
    """A callable that leaves a file each time it is unpickled in a process (``load-<pid>-<n>``),
    to count how often a map ships it."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def __call__(self, x: int) -> int:
        return x + 1

    def __getstate__(self) -> dict[str, Any]:
        return {"directory": self.directory}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.directory = state["directory"]
        touch(Path(self.directory) / f"load-{os.getpid()}-{time.monotonic_ns()}")
