"""The reports of a PipeManager's run: :class:`FlowReport`, the combined progress of every pipe,
built from the pipes' own :class:`~zoopipe_core.pipe.report.PipeReport` (live while they run on
their workers)."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, Sequence
from typing import Any

from zoopipe_core.engines import RemoteError
from zoopipe_core.pipe.report import PipeReport, PipeStatus, run_summary


@dataclasses.dataclass(frozen=True)
class FlowReport:
    """The combined progress of every pipe of a PipeManager, as of when it was taken.

    ``ram_bytes`` is the combined resident memory of the workers running now; once the run is
    over, the highest combined value seen during it. ``failures`` maps a pipe's index to the
    exception that failed it (a ``WorkerLost`` when its worker died) and ``failure_reasons`` the
    same pipes to one line naming the pipe (its input -> output) and why it failed;
    ``merge_error`` is set when the shards succeeded but merging them failed. ``start_time`` and
    ``end_time`` are timezone-aware UTC datetimes (None before the run starts / while it runs).

    Example:
        >>> report = FlowReport(pipe_count=2, total_processed=10, success_count=9, error_count=1)
        >>> report.is_finished, report.has_error, report.status.value
        (False, False, 'pending')
        >>> failed = FlowReport(failures={1: ValueError("x")},
        ...                     failure_reasons={1: "pipe 1 (a.csv -> b.jsonl): x"})
        >>> repr(failed).split("failures=")[1]
        "['pipe 1 (a.csv -> b.jsonl): x'])"
    """

    pipe_count: int = 0
    total_processed: int = 0
    success_count: int = 0
    error_count: int = 0
    items_per_second: float = 0.0
    ram_bytes: int = 0
    duration: float = 0.0
    status: PipeStatus = PipeStatus.PENDING
    failures: dict[int, BaseException] = dataclasses.field(default_factory=dict)
    merge_error: BaseException | None = None
    failure_reasons: dict[int, str] = dataclasses.field(default_factory=dict)
    start_time: datetime.datetime | None = None
    end_time: datetime.datetime | None = None

    @property
    def is_finished(self) -> bool:
        """True once every pipe ended (completed, failed or cancelled) and merging is done."""
        return self.status in (PipeStatus.COMPLETED, PipeStatus.FAILED, PipeStatus.CANCELLED)

    @property
    def has_error(self) -> bool:
        """True as soon as a pipe failed (for good: after its retries), or merging failed."""
        return bool(self.failures) or self.merge_error is not None

    @classmethod
    def combine(
        cls,
        reports: Sequence[PipeReport],
        *,
        status: PipeStatus,
        duration: float,
        ram_bytes: int,
        merge_error: BaseException | None = None,
        name: Callable[[int], str] = lambda index: f"pipe {index}",
        start_time: datetime.datetime | None = None,
        end_time: datetime.datetime | None = None,
    ) -> FlowReport:
        """The report of a run of ``reports``: their counts summed, and each failed pipe's
        exception with one line naming it (``name(index)``) and saying why.

        Example:
            >>> done = PipeReport(0)
            >>> done.mark_finished(PipeStatus.COMPLETED, counts=(3, 2, 1))
            >>> report = FlowReport.combine([done], status=PipeStatus.COMPLETED, duration=1.5, ram_bytes=0)
            >>> report.success_count, report.items_per_second
            (2, 2.0)
        """
        total = sum(r.total_processed for r in reports)
        failures = {r.pipe_index: r.exception for r in reports if r.has_error and r.exception}
        return cls(
            pipe_count=len(reports),
            total_processed=total,
            success_count=sum(r.success_count for r in reports),
            error_count=sum(r.error_count for r in reports),
            items_per_second=total / duration if duration > 0 else 0.0,
            ram_bytes=ram_bytes,
            duration=duration,
            status=status,
            failures=failures,
            merge_error=merge_error,
            failure_reasons={i: f"{name(i)}: {describe_failure(exc)}" for i, exc in failures.items()},
            start_time=start_time,
            end_time=end_time,
        )

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values (``zoopipe run --json``)."""
        summary = run_summary(self)
        return {
            "status": summary.pop("status"),
            "pipe_count": self.pipe_count,
            **summary,
            "failures": {str(i): reason for i, reason in sorted(self.failure_reasons.items())},
            "merge_error": str(self.merge_error) if self.merge_error else None,
        }

    def __repr__(self) -> str:
        return (
            f"FlowReport(status={self.status.value}, pipes={self.pipe_count}, "
            f"total_processed={self.total_processed}, success_count={self.success_count}, "
            f"error_count={self.error_count}, items_per_second={self.items_per_second:.0f}, "
            f"ram_bytes={self.ram_bytes}, duration={self.duration:.2f}s, "
            f"failures={[self.failure_reasons.get(i, f'pipe {i}') for i in sorted(self.failures)]})"
        )


def flow_status(
    reports: Sequence[PipeReport],
    *,
    started: bool,
    finished: bool,
    merge_error: BaseException | None,
    merge_stopped: bool = False,
) -> PipeStatus:
    """The status of a manager's run: pending, running, then failed when a pipe or the merge
    failed, cancelled when a pipe did not complete or the run was stopped while merging,
    completed otherwise.

    Example:
        >>> flow_status([PipeReport()], started=True, finished=False, merge_error=None).value
        'running'
    """
    if not started:
        return PipeStatus.PENDING
    if not finished:
        return PipeStatus.RUNNING
    if merge_error is not None or any(r.status == PipeStatus.FAILED for r in reports):
        return PipeStatus.FAILED
    if merge_stopped or any(r.status != PipeStatus.COMPLETED for r in reports):
        return PipeStatus.CANCELLED
    return PipeStatus.COMPLETED


def running_ram(reports: Sequence[PipeReport]) -> int:
    """The combined resident memory of the workers running ``reports``' pipes now, as they last
    reported it."""
    return sum(r.ram_bytes for r in reports if r.status == PipeStatus.RUNNING and r.worker_ram_bytes)


def describe_failure(exc: BaseException) -> str:
    """One line saying why a pipe failed: the error's first line, and the worker it failed on.

    Example:
        >>> describe_failure(ValueError("bad input\\nmore detail"))
        'bad input'
    """
    remote = RemoteError.of(exc)
    if remote is not None and remote is not exc and remote.worker:
        return f"{exc} (on worker {remote.worker})"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
