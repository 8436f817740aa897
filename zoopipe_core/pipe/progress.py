"""Live progress of a running pipe: a refreshing line on a terminal, plain log lines otherwise."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import IO, Any


def format_progress(report: Any) -> str:
    """One line: rows, rows/s, errors, RAM."""
    return (
        f"rows {report.total_processed:,} | {report.items_per_second:,.0f} rows/s | "
        f"errors {report.error_count:,} | RAM {report.ram_bytes / 2**20:,.0f} MiB"
    )


class ProgressDisplay:
    """Shows a report's progress while a run goes on; use as a context manager.

    On a terminal the line refreshes in place every `interval` seconds; elsewhere (logs, CI) a
    plain line is printed every `log_interval` seconds, then a final line in both cases.

    Example:
        >>> import io
        >>> from zoopipe_core import Pipe, PyGeneratorInputAdapter, MemoryOutputAdapter
        >>> pipe = Pipe(PyGeneratorInputAdapter([{"a": 1}]), MemoryOutputAdapter())
        >>> out = io.StringIO()
        >>> with ProgressDisplay(lambda: pipe.report, stream=out):
        ...     _ = pipe.run()
        >>> out.getvalue().splitlines()[-1].startswith("done: rows 1")
        True
    """

    def __init__(
        self,
        report: Callable[[], Any],
        stream: IO[str] | None = None,
        interval: float = 0.25,
        log_interval: float = 5.0,
    ) -> None:
        self._report = report
        self._stream = stream or sys.stderr
        self._tty = bool(getattr(self._stream, "isatty", lambda: False)())
        self._interval = interval if self._tty else log_interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="zoopipe-progress", daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            line = format_progress(self._report())
            if self._tty:
                self._stream.write("\r\033[K" + line)
            else:
                self._stream.write(line + "\n")
            self._stream.flush()

    def __enter__(self) -> ProgressDisplay:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        report = self._report()
        prefix = "\r\033[K" if self._tty else ""
        status = getattr(report, "status", None)
        word = "done" if status is None or status.value == "completed" else str(status.value)
        self._stream.write(f"{prefix}{word}: {format_progress(report)} | {report.duration:.2f}s\n")
        self._stream.flush()
