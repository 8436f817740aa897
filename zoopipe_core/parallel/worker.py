"""What runs on a worker for a PipeManager: one pipe, with its report streamed to the driver.

The task is a module-level function, so every engine can ship it (by reference when it
pickles). It runs the pipe on a thread of the worker and, every ``interval`` seconds, sends the
live counts with :func:`~zoopipe_core.engines.report_progress`; the driver turns them into the
pipe's :class:`~zoopipe_core.pipe.report.PipeReport`. When the engine stops the task (cancel,
shutdown), the pipe is shut down so it publishes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from zoopipe_core.adapters.memory import MemoryOutputAdapter
from zoopipe_core.adapters.pygen import PyGeneratorOutputAdapter
from zoopipe_core.engines import report_progress
from zoopipe_core.errors import PipelineError
from zoopipe_core.pipe.output_paths import check_distinct_outputs
from zoopipe_core.pipe.pipe import Pipe
from zoopipe_core.pipe.report import PipeReport, PipeStatus

#: Seconds between two progress messages of a running pipe.
PROGRESS_INTERVAL = 0.2


def snapshot(report: PipeReport, pipe_index: int, attempt: int) -> dict[str, Any]:
    """The payload a worker sends: a pipe's counts, status and the worker's memory.

    Example:
        >>> snapshot(PipeReport(), pipe_index=3, attempt=1)["status"]
        'pending'
    """
    return {
        "pipe_index": pipe_index,
        "attempt": attempt,
        "status": report.status.value,
        "total_processed": report.total_processed,
        "success_count": report.success_count,
        "error_count": report.error_count,
        "ram_bytes": report.ram_bytes,
        "duration": report.duration,
        "pid": os.getpid(),
    }


def run_pipe_task(
    pipe: Pipe, key: str, pipe_index: int, attempt: int = 1, interval: float = PROGRESS_INTERVAL
) -> dict[str, Any]:
    """Run ``pipe`` here, reporting under ``key`` every ``interval`` seconds; return the final
    payload. Raises the pipe's PipelineError if it failed.

    Example:
        >>> from zoopipe_core import Pipe, PyGeneratorInputAdapter, MemoryOutputAdapter
        >>> pipe = Pipe(PyGeneratorInputAdapter([{"a": 1}, {"a": 2}]), MemoryOutputAdapter())
        >>> final = run_pipe_task(pipe, "example", pipe_index=0)
        >>> final["status"], final["total_processed"]
        ('completed', 2)
    """
    pipe.start()
    try:
        while not pipe.wait(interval):
            report_progress(key, snapshot(pipe.report, pipe_index, attempt))
    except BaseException:
        # The engine is stopping this task: stop the pipe, and wait for it to remove its
        # temporary files before the task ends (its worker may exit or be killed right after).
        pipe.stop_promptly(absorb=BaseException)
        raise
    final = snapshot(pipe.report, pipe_index, attempt)
    report_progress(key, final)
    report = pipe.report
    if report.status == PipeStatus.FAILED:
        raise report.exception or PipelineError(f"pipe {pipe_index} failed")
    if report.status == PipeStatus.CANCELLED:
        raise PipelineError(f"pipe {pipe_index} was cancelled inside its worker; nothing was published")
    return final


def check_pipes(pipes: Sequence[Any]) -> list[Pipe]:
    """``pipes`` as a list, if they can run together on workers: at least one, each a Pipe that
    writes to no output living in the worker's memory, no two writing the same file.

    Example:
        >>> from zoopipe_core import Pipe, PyGeneratorInputAdapter, MemoryOutputAdapter
        >>> try:
        ...     check_pipes([Pipe(PyGeneratorInputAdapter([]), MemoryOutputAdapter())])
        ... except ValueError as exc:
        ...     print(str(exc).split(",")[0])
        pipes[0] writes to a MemoryOutputAdapter
    """
    pipes = list(pipes)
    if not pipes:
        raise ValueError("PipeManager needs at least one pipe")
    for index, pipe in enumerate(pipes):
        if not isinstance(pipe, Pipe):
            raise TypeError(f"pipes[{index}] is {type(pipe).__name__}, not a Pipe")
        for adapter in (pipe.output_adapter, pipe.error_output_adapter):
            if isinstance(adapter, (MemoryOutputAdapter, PyGeneratorOutputAdapter)):
                raise ValueError(
                    f"pipes[{index}] writes to a {type(adapter).__name__}, which would hand the "
                    "records over in the worker's memory, where they are lost; write to a file "
                    "(JSONOutputAdapter('out.jsonl')) or run the pipe with pipe.run()"
                )
    check_distinct_outputs(enumerate(pipes))  # pipes of one run must not overwrite each other
    return pipes
