"""Pipe: one input, through validation and transforms, to one output and an error output."""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import copy
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from zoopipe_core.adapters.base import InputAdapter, OutputAdapter
from zoopipe_core.adapters.resolve import resolve_input_adapter, resolve_output_adapter
from zoopipe_core.pipe.executors import Executor, SingleThreadExecutor
from zoopipe_core.pipe.report import PipeReport, PipeStatus
from zoopipe_core.pipe.transforms import TransformLike
from zoopipe_core.running import RunningSet

_log = logging.getLogger("zoopipe")

#: Seconds a run stopped by Ctrl-C or at exit has to reach its next batch before the Python
#: code it runs (a transform, a Python source or writer) is interrupted.
INTERRUPT_AFTER = 0.2
#: Seconds such a stop waits for the run to end and remove its temporary files.
STOP_WAIT = 10.0

# Pipes whose run thread is alive, for the exit hook below.
_running: RunningSet[Pipe] = RunningSet()


@atexit.register
def _stop_runs_at_exit() -> None:
    """A run still going when Python exits is stopped, and its temporary files removed, before
    the interpreter finalises: its daemon thread must not run (or be killed) during finalisation."""
    for pipe in _running.snapshot():
        _log.warning(
            "%r was still running when Python exited: stopping it, nothing is published. "
            "Call pipe.wait() before the program ends to let it finish",
            pipe,
        )
        if not pipe.stop_promptly():
            _log.warning(
                "%r did not stop within %g s (its Python code ignores the interruption, or "
                "is blocked in C code): its temporary files stay until the next run of the "
                "same output removes them",
                pipe,
                STOP_WAIT,
            )


class _RunThread(threading.Thread):
    """The daemon thread of a started run. ``finished`` is set once the run is over: after a
    ``join()`` interrupted by Ctrl-C, Python 3.11 marks a thread stopped while it still runs, so
    ``join``/``is_alive`` cannot tell when the run really ended."""

    def __init__(self, target: Any, args: tuple[Any, ...]) -> None:
        super().__init__(target=target, args=args, name="zoopipe-pipe", daemon=True)
        self.finished = threading.Event()

    def run(self) -> None:
        try:
            super().run()
        finally:
            self.finished.set()

    @property
    def running(self) -> bool:
        return not self.finished.is_set()


class Pipe:
    """Stream records from an input adapter, validate them with a pydantic model, transform
    them in batches, and write them out. Records that fail go to the error output with their
    source, line, stage and reason; `read == written + errors` for every run.

    Parsing and writing happen in Rust threads; Python runs only for validation and your
    transforms. Outputs are published atomically: a failed run publishes nothing.

    Example:
        >>> from pydantic import BaseModel
        >>> from zoopipe_core import Pipe, PyGeneratorInputAdapter, MemoryOutputAdapter
        >>> class User(BaseModel):
        ...     id: int
        ...     name: str
        >>> def shout(records):
        ...     return [{**r, "name": r["name"].upper()} for r in records]
        >>> out, errors = MemoryOutputAdapter(), MemoryOutputAdapter()
        >>> report = Pipe(
        ...     PyGeneratorInputAdapter([{"id": "1", "name": "ada"}, {"id": "x", "name": "bob"}]),
        ...     out, error_output_adapter=errors, schema_model=User, post_validation=[shout],
        ... ).run()
        >>> report.success_count, report.error_count, out.records
        (1, 1, [{'id': 1, 'name': 'ADA'}])
        >>> errors.records[0]["stage"], errors.records[0]["line"]
        ('validation', 2)
    """

    def __init__(
        self,
        input_adapter: InputAdapter | str,
        output_adapter: OutputAdapter | str,
        error_output_adapter: OutputAdapter | str | None = None,
        schema_model: type[BaseModel] | None = None,
        pre_validation: Sequence[TransformLike] | None = None,
        post_validation: Sequence[TransformLike] | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.input_adapter = resolve_input_adapter(input_adapter)
        self.output_adapter = resolve_output_adapter(output_adapter)
        self.error_output_adapter = (
            resolve_output_adapter(error_output_adapter) if error_output_adapter is not None else None
        )
        is_model = isinstance(schema_model, type) and issubclass(schema_model, BaseModel)
        if schema_model is not None and not is_model:
            raise TypeError(f"schema_model must be a pydantic BaseModel subclass, got {schema_model!r}")
        self.schema_model = schema_model
        self.pre_validation = list(pre_validation or [])
        self.post_validation = list(post_validation or [])
        for transform in self.transforms:
            if not callable(transform):
                raise TypeError(f"transform {transform!r} is not callable; pass a function or a Transform")
        self.executor = executor or SingleThreadExecutor()
        from zoopipe_core.pipe.output_paths import check_distinct_outputs

        check_distinct_outputs([(None, self)])  # before anything runs: no output may overwrite another
        self._report = PipeReport()
        self._thread: _RunThread | None = None
        self._control: Any = None

    @property
    def transforms(self) -> list[TransformLike]:
        return self.pre_validation + self.post_validation

    @property
    def report(self) -> PipeReport:
        """The report of the current (or last) run; a PipeManager running this pipe on a worker
        sets it to the live report it keeps from the worker's messages."""
        return self._report

    @report.setter
    def report(self, report: PipeReport) -> None:
        self._report = report

    def fresh_copy(self, pipe_index: int = 0) -> Pipe:
        """A copy of this pipe's configuration (adapters, schema, transforms, executor: the same
        objects) that has not run: a new pending report numbered ``pipe_index``, no run thread.
        A shard of a parallel run starts as one, then takes its own input and outputs.

        Example:
            >>> from zoopipe_core import PyGeneratorInputAdapter, MemoryOutputAdapter
            >>> pipe = Pipe(PyGeneratorInputAdapter([{"a": 1}]), MemoryOutputAdapter())
            >>> _ = pipe.run()
            >>> shard = pipe.fresh_copy(pipe_index=3)
            >>> shard.report.pipe_index, shard.report.status.value, shard.schema_model is pipe.schema_model
            (3, 'pending', True)
        """
        shard = copy.copy(self)  # through __getstate__: the run state (thread, stop control) stays behind
        shard.report = PipeReport(pipe_index)
        return shard

    def _run_here(self) -> None:
        from zoopipe_core.pipe.runner import execute

        try:
            execute(self, self._report, self._control)
        except BaseException:
            pass
        finally:
            _running.discard(self)

    def start(self) -> None:
        """Start the run in a background thread and return at once."""
        from zoopipe_core.pipe.runner import RunControl

        if self._thread is not None and self._thread.running:
            raise RuntimeError("this pipe is already running; wait() or shutdown() first")
        self._report = PipeReport(self._report.pipe_index)
        self._control = RunControl()
        # The run thread sees the caller's context (the CPUs its engine granted the task).
        context = contextvars.copy_context()
        self._thread = _RunThread(context.run, (self._run_here,))
        _running.add(self)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the run to end. True if it ended (check `report.status`), False on timeout.

        Ctrl-C while waiting stops the run first (nothing is published, its temporary files are
        removed), then raises KeyboardInterrupt as usual."""
        if self._thread is None:
            raise RuntimeError("this pipe was not started; call start() or run()")
        try:
            return self._thread.finished.wait(timeout)
        except KeyboardInterrupt as interrupt:
            self.stop_promptly()
            # The traceback ends at this wait(), not inside threading's locks.
            raise interrupt.with_traceback(None)  # noqa: B904 - the same exception, not a new one

    def run(self) -> PipeReport:
        """Run to the end and return the report. Raises PipelineError if the run failed."""
        from zoopipe_core.pipe.runner import RunControl, execute

        if self._thread is not None and self._thread.running:
            raise RuntimeError("this pipe is already running; wait() or shutdown() first")
        self._report = PipeReport(self._report.pipe_index)
        self._control = RunControl()
        execute(self, self._report, self._control)
        return self._report

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop the run: at the next batch, or after `timeout` seconds by interrupting the
        Python code it runs (a transform, a Python source or writer). Nothing is published;
        the report's status becomes CANCELLED."""
        if not self._stop(interrupt_after=timeout, wait=2 * timeout):
            raise TimeoutError(
                f"the pipe did not stop within {2 * timeout:.1f}s: a transform, source or writer is "
                "blocked outside Python (in C code or I/O); the run will be cancelled when it returns"
            )

    def stop_promptly(
        self, absorb: type[BaseException] | tuple[type[BaseException], ...] = KeyboardInterrupt
    ) -> bool:
        """Stop the run now (Ctrl-C, Python exiting, the engine stopping a task): interrupt its
        Python code after INTERRUPT_AFTER seconds, wait up to STOP_WAIT seconds for it to remove
        its temporary files. Exceptions of type `absorb` arriving meanwhile (a second Ctrl-C) do
        not cut that wait short. True if the run ended."""
        return self._stop(interrupt_after=INTERRUPT_AFTER, wait=STOP_WAIT, absorb=absorb)

    def _stop(
        self,
        interrupt_after: float,
        wait: float,
        absorb: type[BaseException] | tuple[type[BaseException], ...] = (),
    ) -> bool:
        """Ask the run to stop at its next batch; interrupt the Python code it runs once
        `interrupt_after` seconds have passed; wait at most `wait` seconds in all. True if the
        run ended (or was not running)."""
        thread, control = self._thread, self._control
        if thread is None or control is None or not thread.running:
            return True
        absorbed = absorb if isinstance(absorb, tuple) else (absorb,)
        control.request_stop()
        start = time.monotonic()
        interrupted = False
        while thread.running:
            waited = time.monotonic() - start
            if waited >= wait:
                break
            if not interrupted and waited >= interrupt_after:
                control.interrupt()
                interrupted = True
            with contextlib.suppress(*absorbed):  # already stopping, and the wait is bounded
                thread.finished.wait(min(0.05, wait - waited))
        return not thread.running

    def __getstate__(self) -> dict[str, Any]:
        """A Pipe travels to a worker (PipeManager) as its configuration: adapters, schema,
        transforms and executor. The run state (thread, stop control, report) stays behind."""
        state = dict(self.__dict__)
        state["_thread"] = None
        state["_control"] = None
        state["_report"] = self._report.pipe_index
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        state["_report"] = PipeReport(state["_report"])
        self.__dict__.update(state)

    def __enter__(self) -> Pipe:
        self.start()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.wait()
        elif issubclass(exc_type, KeyboardInterrupt):
            self.stop_promptly()
        else:
            self.shutdown()

    def __repr__(self) -> str:
        return f"Pipe({self.input_adapter!r} -> {self.output_adapter!r}, status={self._report.status.value})"


__all__ = ["Pipe", "PipeStatus"]
