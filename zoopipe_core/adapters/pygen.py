"""An output the caller iterates: records handed over through a bounded queue while the pipe
runs (ZooPipe's ``PyGeneratorOutputAdapter``)."""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterator
from typing import Any

from zoopipe_core.adapters.base import BatchWriter, OutputAdapter
from zoopipe_core.errors import PipelineError

#: Seconds a consumer that saw the writer abort waits for the run's own reason (run_ended).
_REASON_GRACE = 1.0


class _Stream:
    """The records of one run between the pipe (producer) and the caller (consumer)."""

    def __init__(self, queue_size: int, runner: threading.Thread | None) -> None:
        self.queue_size = queue_size
        self.rows: collections.deque[dict[str, Any]] = collections.deque()
        self.cond = threading.Condition()
        self.done = False  # every record was handed over (the run succeeded)
        self.error: BaseException | None = None  # the run failed or was cancelled
        self.reason_known = False  # error is the run's own reason, not only "aborted"
        self.consumed = 0
        self.consumers = 0  # iterators not yet exhausted nor closed
        self.abandoned = False  # a consumer stopped iterating before the end
        # A pipe run with run() runs in the caller's thread, which can iterate only after.
        self.foreground = runner is not None and runner.name != "zoopipe-pipe"

    def put(self, records: list[dict[str, Any]]) -> None:
        with self.cond:
            for record in records:
                while len(self.rows) >= self.queue_size:
                    if self.abandoned:
                        raise PipelineError(
                            f"the caller stopped iterating PyGeneratorOutputAdapter after {self.consumed} "
                            "records; the rest of the run had nowhere to go (iterate to the end, or "
                            "stop the pipe with pipe.shutdown())"
                        )
                    if self.foreground and self.consumed == 0 and self.consumers == 0:
                        raise PipelineError(
                            f"PyGeneratorOutputAdapter holds queue_size={self.queue_size} records and "
                            "nothing is iterating it: pipe.run() returns only at the end of the run, "
                            "so iterate while the pipe runs (pipe.start(); for row in output: ...) "
                            "or give a queue_size larger than the output"
                        )
                    # Short waits: shutdown() interrupts this thread between them.
                    self.cond.wait(0.1)
                self.rows.append(record)
                self.cond.notify_all()

    def end(self, error: BaseException | None, reason_known: bool) -> None:
        with self.cond:
            if error is None:
                self.done = True
            elif self.error is None or (reason_known and not self.reason_known):
                self.error, self.reason_known = error, reason_known
            self.cond.notify_all()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        with self.cond:
            self.consumers += 1
        finished = False
        try:
            while True:
                with self.cond:
                    while not self.rows and not self.done and self.error is None:
                        self.cond.wait(0.2)
                    if self.rows:
                        row = self.rows.popleft()
                        self.consumed += 1
                        self.cond.notify_all()
                    elif self.error is not None:
                        if not self.reason_known:
                            self.cond.wait_for(lambda: self.reason_known, _REASON_GRACE)
                        finished = True
                        raise PipelineError(
                            f"the run writing to this PyGeneratorOutputAdapter did not finish: "
                            f"{self.error}; the {self.consumed} records yielded before are incomplete"
                        ) from self.error
                    else:
                        finished = True
                        return
                yield row
        finally:
            with self.cond:
                self.consumers -= 1
                if not finished and self.consumers == 0 and not self.done:
                    self.abandoned = True
                self.cond.notify_all()


class _StreamWriter(BatchWriter):
    def __init__(self, stream: _Stream) -> None:
        self.stream = stream

    def write_batch(self, records: list[dict[str, Any]]) -> None:
        self.stream.put(records)

    def commit(self) -> None:
        self.stream.end(None, True)

    def abort(self) -> None:
        self.stream.end(PipelineError("the run failed or was cancelled"), False)


class PyGeneratorOutputAdapter(OutputAdapter):
    """An output the caller iterates, record by record (dicts), while the pipe runs or after.

    Records wait in a queue of at most ``queue_size`` records; when it is full the pipe waits for
    the consumer, so memory stays bounded. Start the pipe in the background and iterate::

        pipe.start()
        for row in out: ...

    Iterating after ``pipe.run()`` works while the whole output fits in the queue; if the queue
    fills while nothing iterates it, the run fails at once saying so (rather than waiting
    forever, as the pipe could not go on). Records reach the consumer as they are written, so
    this output is not atomic: when the run fails or is cancelled, the iterator raises
    PipelineError with the reason after the records already handed over. If the consumer stops
    iterating early, the pipe fails once the queue is full. Registered as ``"generator"``; it
    lives in this process, so a PipeManager cannot run it.

    Example:
        >>> from zoopipe_core import Pipe, PyGeneratorInputAdapter
        >>> out = PyGeneratorOutputAdapter(queue_size=10)
        >>> pipe = Pipe(PyGeneratorInputAdapter({"n": i} for i in range(100)), out)
        >>> pipe.start()
        >>> sum(row["n"] for row in out)
        4950
        >>> pipe.wait(), pipe.report.success_count
        (True, 100)
    """

    name = "generator"

    def __init__(self, queue_size: int = 1000) -> None:
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
            raise ValueError(f"queue_size must be a number of records >= 1, got {queue_size!r}")
        self.queue_size = queue_size
        self._stream = _Stream(queue_size, None)

    @property
    def target_name(self) -> str:
        return "PyGeneratorOutputAdapter"

    def open_writer(self) -> BatchWriter:
        stream = self._stream
        with stream.cond:
            fresh = not stream.rows and not stream.done and stream.error is None and stream.consumed == 0
        if fresh:  # a consumer may already wait on it: keep it, and learn who runs the pipe
            stream.foreground = threading.current_thread().name != "zoopipe-pipe"
        else:  # a new run after an earlier one: a new stream
            self._stream = stream = _Stream(self.queue_size, threading.current_thread())
        return _StreamWriter(stream)

    def run_ended(self, report: Any) -> None:
        if report.status.value != "completed":
            error = report.exception or PipelineError(f"the run ended {report.status.value}")
            self._stream.end(error, True)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._stream)

    def __repr__(self) -> str:
        return f"PyGeneratorOutputAdapter(queue_size={self.queue_size})"
