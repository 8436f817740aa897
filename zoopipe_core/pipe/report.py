"""Reports: live while a pipe runs (counters read from the Rust executor), final after."""

from __future__ import annotations

import datetime
import enum
import os
import resource
import threading
import time
from typing import Any

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def current_rss_bytes() -> int:
    """Resident memory of this process now (peak RSS where /proc is absent)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE_SIZE
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class PipeStatus(str, enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


_FINAL = (PipeStatus.COMPLETED, PipeStatus.FAILED, PipeStatus.CANCELLED)


class _RemoteCounts:
    """Counts as a worker last reported them, shaped like the executor's live counters."""

    __slots__ = ("errors", "read", "success")

    def __init__(self, read: int, success: int, errors: int) -> None:
        self.read, self.success, self.errors = read, success, errors


class PipeReport:
    """Progress and outcome of one pipe. Counts are live while it runs.

    `total_processed` counts the records read and carried through: a batch counts once it is
    written (to the output or the error output). So at the end of every run, completed,
    failed or cancelled, `total_processed == success_count + error_count`.

    `start_time` and `end_time` are timezone-aware UTC datetimes (None before the run starts,
    and `end_time` while it runs), as ZooPipe's reports have them; `duration` is measured on a
    monotonic clock, so a change of the system clock does not skew it.

    Example:
        >>> report = PipeReport()
        >>> report.status, report.total_processed, report.is_finished
        (<PipeStatus.PENDING: 'pending'>, 0, False)
    """

    def __init__(self, pipe_index: int = 0) -> None:
        self.pipe_index = pipe_index
        self.status = PipeStatus.PENDING
        self.exception: BaseException | None = None
        self.start_time: datetime.datetime | None = None
        self.end_time: datetime.datetime | None = None
        self._started: float | None = None  # time.monotonic() at start and end
        self._ended: float | None = None
        self.error_samples: list[dict[str, Any]] = []
        self._progress: Any = None
        self._final: tuple[int, int, int] | None = None
        self._finished = threading.Event()
        self._remote_ram: int | None = None  # the worker's RSS, for a pipe run by a PipeManager

    # -- counters ---------------------------------------------------------------------------
    def _counts(self) -> tuple[int, int, int]:
        if self._final is not None:
            return self._final
        if self._progress is None:
            return (0, 0, 0)
        p = self._progress
        return (p.read, p.success, p.errors)

    @property
    def total_processed(self) -> int:
        return self._counts()[0]

    @property
    def success_count(self) -> int:
        return self._counts()[1]

    @property
    def error_count(self) -> int:
        return self._counts()[2]

    @property
    def duration(self) -> float:
        if self._started is None:
            return 0.0
        return (self._ended or time.monotonic()) - self._started

    @property
    def items_per_second(self) -> float:
        duration = self.duration
        return self.total_processed / duration if duration > 0 else 0.0

    @property
    def ram_bytes(self) -> int:
        """Resident memory of the process running the pipe: this one, or the worker's (as last
        reported) for a pipe run by a PipeManager."""
        if self._remote_ram is not None:
            return self._remote_ram
        return current_rss_bytes()

    @property
    def worker_ram_bytes(self) -> int | None:
        """The resident memory of the worker running the pipe, as it last reported it (a pipe
        run by a PipeManager); None for a pipe running in this process."""
        return self._remote_ram

    # -- state ------------------------------------------------------------------------------
    @property
    def is_finished(self) -> bool:
        return self._finished.is_set()

    @property
    def is_alive(self) -> bool:
        return self.status == PipeStatus.RUNNING

    @property
    def has_error(self) -> bool:
        return self.status == PipeStatus.FAILED

    def wait(self, timeout: float | None = None) -> bool:
        return self._finished.wait(timeout)

    # -- transitions (called by the runner and by PipeManager, not by users) -------------------
    def mark_running(self, progress: Any) -> None:
        """The run started; ``progress`` is the executor's live counters (``read``, ``success``,
        ``errors``), read whenever the counts are asked for."""
        self._progress = progress
        self.status = PipeStatus.RUNNING
        self._started = time.monotonic()
        self.start_time = _now()

    def mark_finished(
        self,
        status: PipeStatus,
        counts: tuple[int, int, int] | None = None,
        exception: BaseException | None = None,
    ) -> None:
        """The run ended with ``status``: the counts are frozen (``counts`` as
        ``(total_processed, success_count, error_count)``, or the live counts as of now) and
        :meth:`wait` returns."""
        self._final = counts if counts is not None else self._counts()
        self.exception = exception
        self._ended = time.monotonic()
        self.end_time = _now()
        self.status = status
        self._finished.set()

    def update_from_worker(self, payload: dict[str, Any]) -> None:
        """Take the live counts a worker sent (see zoopipe_core.parallel.worker) while the pipe
        runs; ignored once the report is finished.

        Example:
            >>> report = PipeReport()
            >>> report.update_from_worker({"total_processed": 5, "success_count": 4, "error_count": 1,
            ...                            "ram_bytes": 1024, "duration": 0.5})
            >>> report.status.value, report.total_processed, report.worker_ram_bytes
            ('running', 5, 1024)
        """
        if self.is_finished:
            return
        counts = (payload["total_processed"], payload["success_count"], payload["error_count"])
        self._progress = _RemoteCounts(*counts)
        self._remote_ram = payload.get("ram_bytes")
        if self._started is None:
            ran = payload.get("duration", 0.0)
            self._started = time.monotonic() - ran
            self.start_time = _now() - datetime.timedelta(seconds=ran)
        if self.status == PipeStatus.PENDING:
            self.status = PipeStatus.RUNNING

    def reset_counts(self) -> None:
        """Forget the live counts of a failed attempt: the rerun of the pipe (PipeManager's
        ``retries``) reports its own, from zero."""
        self._progress = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "pipe_index": self.pipe_index,
            **run_summary(self),
            "exception": repr(self.exception) if self.exception else None,
        }

    def __repr__(self) -> str:
        return (
            f"PipeReport(status={self.status.value}, total_processed={self.total_processed}, "
            f"success_count={self.success_count}, error_count={self.error_count}, "
            f"items_per_second={self.items_per_second:.0f}, duration={self.duration:.2f}s)"
        )


def run_summary(report: PipeReport | Any) -> dict[str, Any]:
    """The status, counts, speed and times of a run, as JSON-ready values: what a pipe's report and
    a manager's (``FlowReport``) both say in ``to_dict``."""
    return {
        "status": report.status.value,
        "total_processed": report.total_processed,
        "success_count": report.success_count,
        "error_count": report.error_count,
        "items_per_second": round(report.items_per_second, 1),
        "ram_bytes": report.ram_bytes,
        "duration": round(report.duration, 3),
        "start_time": report.start_time.isoformat() if report.start_time else None,
        "end_time": report.end_time.isoformat() if report.end_time else None,
    }
