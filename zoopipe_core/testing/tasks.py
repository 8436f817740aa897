"""The tasks of the engine contract: module-level functions, so engines that pickle tasks
(spawn, Ray, Dask) send them by reference (``zoopipe_core.testing.tasks.add``)."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from zoopipe_core.engines import WorkerInfo, current_worker, report_progress
from zoopipe_core.testing.sync import touch, wait_for


class UnpicklableTaskError(Exception):
    """An exception that cannot travel back to the driver: it holds a lock."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


def add(a: int, b: int, *, scale: int = 1) -> int:
    return (a + b) * scale


def raise_value_error(message: str) -> None:
    raise ValueError(message)


def raise_unpicklable(message: str) -> None:
    raise UnpicklableTaskError(message)


def wait_for_flag(started: str, flag: str) -> str:
    """Signal that the task runs, then wait until the driver sets ``flag``."""
    touch(started)
    wait_for(lambda: os.path.exists(flag), f"the driver to create {flag}")
    return "released"


def kill_own_process(pid_file: str) -> None:
    Path(pid_file).write_text(str(os.getpid()))
    os.kill(os.getpid(), signal.SIGKILL)


def ignore_stop_requests(started: str) -> None:
    """Run until killed, swallowing every polite request to stop."""
    touch(started)
    while True:
        try:  # noqa: SIM105 - a with block could let a stop request escape from its exit
            time.sleep(0.05)
        except BaseException:
            pass


def describe_shared(ref: Any, check_shared_memory: bool) -> dict[str, Any]:
    obj = ref.get()
    description = {
        "key": ref.key,
        "size": len(obj),
        "sha256": hashlib.sha256(obj).hexdigest(),
        "cached": ref.get() is obj,
    }
    if check_shared_memory:
        from multiprocessing import shared_memory

        block = shared_memory.SharedMemory(name=ref.key)
        description["block_size"] = block.size
        block.close()
    return description


def report_then_wait(key: str, flag: str) -> str:
    report_progress(key, {"done": 1, "total": 2})
    wait_for(lambda: os.path.exists(flag), f"the driver to create {flag}")
    report_progress(key, {"done": 2, "total": 2})
    return "finished"


def read_env(name: str) -> str | None:
    return os.environ.get(name)


def import_attribute(module: str, attribute: str) -> Any:
    import importlib

    return getattr(importlib.import_module(module), attribute)


def where_am_i() -> tuple[WorkerInfo | None, WorkerInfo | None]:
    """The task's :func:`current_worker`, as the task sees it and as a thread it starts does."""
    seen: list[WorkerInfo | None] = []
    thread = threading.Thread(target=lambda: seen.append(current_worker()))
    thread.start()
    thread.join()
    return current_worker(), seen[0]


def wait_for_others(directory: str, index: int, count: int) -> int:
    """Mark this task started, then wait until ``count`` tasks have: they run at once."""
    folder = Path(directory)
    touch(folder / f"started-{index}")
    wait_for(lambda: len(list(folder.glob("started-*"))) >= count, f"{count} tasks to run at once")
    return index
