"""The runs going on in this process (pipes, managers), so that an exit hook or a signal handler
can stop them before Python finalises."""

from __future__ import annotations

import os
import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class RunningSet(Generic[T]):
    """A thread-safe set of runs in progress. A forked child starts empty: it runs none of its
    parent's runs, and the lock may have been held by one of the parent's threads at the fork.

    Example:
        >>> runs = RunningSet()
        >>> runs.add("pipe-1")
        >>> runs.snapshot(), bool(runs)
        (['pipe-1'], True)
        >>> runs.discard("pipe-1")
        >>> bool(runs)
        False
    """

    def __init__(self) -> None:
        self._items: set[T] = set()
        self._lock = threading.Lock()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._items = set()
        self._lock = threading.Lock()

    def add(self, item: T) -> None:
        with self._lock:
            self._items.add(item)

    def discard(self, item: T) -> None:
        with self._lock:
            self._items.discard(item)

    def snapshot(self) -> list[T]:
        with self._lock:
            return list(self._items)

    def __bool__(self) -> bool:
        # No lock: a signal handler may ask, and must not wait for a lock its own thread holds.
        return bool(self._items)
