"""What the PipeManager suite runs: its record schema, input files and test transforms.

The transforms are module-level classes, so engines that pickle pipes ship them by reference.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from typing import Any

from pydantic import BaseModel

from zoopipe_core.testing.sync import touch, wait_for


class UserSchema(BaseModel):
    """The record of the PipeManager suite's inputs (the schema of the PipeManager docs).

    Example:
        >>> UserSchema(user_id="7", username="ada", email="a@x.io").user_id
        7
    """

    user_id: int
    username: str
    email: str


class LogRecords(logging.Handler):
    """Collects the log records of a logger it is added to.

    Example:
        >>> logger, records = logging.getLogger("zoopipe.example"), LogRecords()
        >>> logger.addHandler(records)
        >>> logger.warning("disk %s", "full")
        >>> logger.removeHandler(records)
        >>> [record.getMessage() for record in records.records]
        ['disk full']
    """

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class KillOnce:
    """A transform that SIGKILLs its own worker on the record with ``user_id == on_id``, the
    first time only: it creates ``marker`` just before, and does nothing once it exists.

    Example:
        >>> KillOnce("/nonexistent/marker", on_id=5)([{"user_id": 1}])
        [{'user_id': 1}]
    """

    def __init__(self, marker: str, on_id: int) -> None:
        self.marker, self.on_id = marker, on_id

    def __call__(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for record in records:
            if record.get("user_id") == self.on_id and not os.path.exists(self.marker):
                touch(self.marker)
                os.kill(os.getpid(), signal.SIGKILL)
        return records


class HoldAfterFirstBatch:
    """A transform that lets the first batch through, then waits until ``flag`` exists.

    Example:
        >>> HoldAfterFirstBatch("/nonexistent/flag")([{"n": 1}])
        [{'n': 1}]
    """

    def __init__(self, flag: str) -> None:
        self.flag = flag
        self.batches = 0

    def __call__(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.batches += 1
        if self.batches > 1:
            wait_for(lambda: os.path.exists(self.flag), f"the driver to create {self.flag}")
        return records


class NeverEnds:
    """A transform that touches ``started`` and then never returns on its own (a pipe that
    only a shutdown stops).

    Example:
        >>> NeverEnds("started").started
        'started'
    """

    def __init__(self, started: str) -> None:
        self.started = started

    def __call__(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        touch(self.started)
        while True:
            time.sleep(0.05)


def write_users(path: str | os.PathLike[str], first: int, count: int, bad_every: int = 0) -> str:
    """A JSON Lines file of ``count`` users from ``user_id == first``; with ``bad_every``, every
    such record has a user_id that fails validation."""
    import json

    with open(path, "w") as file:
        for n in range(first, first + count):
            bad = bad_every and n % bad_every == 0
            record = {"user_id": f"bad-{n}" if bad else n, "username": f"user{n}", "email": f"u{n}@x.io"}
            file.write(json.dumps(record) + "\n")
    return os.fspath(path)


def read_lines(path: str | os.PathLike[str]) -> list[str]:
    with open(path) as file:
        return file.read().splitlines()
