"""Runs one pipe to the end on the calling thread: opens inputs and outputs, calls the Rust
executor, then publishes every output or none. The one module that runs pipes on `_native`
(``zoopipe_core.adapters.files`` only asks it for split points)."""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zoopipe_core import _native
from zoopipe_core.adapters.base import InputAdapter, OutputAdapter
from zoopipe_core.adapters.native_spec import (
    CsvSource,
    FileSpec,
    JsonlSource,
    NativeSpec,
    PythonSink,
    PythonSource,
    SinkSpec,
    SourceSpec,
)
from zoopipe_core.adapters.storage import PendingOutput, open_input
from zoopipe_core.engines.resources import task_cpus
from zoopipe_core.errors import PipelineError
from zoopipe_core.pipe.arrow_schema import with_model_schema
from zoopipe_core.pipe.report import PipeReport, PipeStatus
from zoopipe_core.pipe.stage import BatchStage
from zoopipe_core.pipe.validation import input_keys, not_null_columns

if TYPE_CHECKING:
    from zoopipe_core.pipe.pipe import Pipe

logger = logging.getLogger("zoopipe")

NativeProgress = _native.NativeProgress
StopToken = _native.StopToken


class PipeCancelled(BaseException):
    """Raised inside the Python code a pipe is running (a transform, a Python source or writer)
    to stop it. A BaseException, like KeyboardInterrupt, so `except Exception` cannot swallow it."""


def _raise_in_thread(ident: int, exc: type[BaseException] | None) -> None:
    """Raise `exc` in the thread `ident` at its next Python instruction (None: withdraw it)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(exc) if exc else None)


class RunControl:
    """Stops a run: a flag the executor checks between batches, and, for Python code that does
    not return, an interruption raised in exactly the threads running the pipe's Python code.

    Example:
        >>> control = RunControl()
        >>> call = control.python_call(lambda records: records)
        >>> call([1]), control.stop.is_set
        ([1], False)
    """

    def __init__(self) -> None:
        self.stop = StopToken()
        self._lock = threading.Lock()
        self._threads: set[int] = set()
        self._interrupted = False

    def request_stop(self) -> None:
        self.stop.set()

    def interrupt(self) -> None:
        """Raise PipeCancelled in every thread now running the pipe's Python code."""
        with self._lock:
            if self._interrupted:
                return
            self._interrupted = True
            for ident in self._threads:
                _raise_in_thread(ident, PipeCancelled)

    @contextmanager
    def _running_python(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._lock:
            if self._interrupted:
                raise PipeCancelled()
            self._threads.add(me)
        try:
            yield
        finally:
            with self._lock:
                self._threads.discard(me)
                # An interruption not yet delivered must not land in the runner's own code.
                _raise_in_thread(me, None)

    def python_call(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """`func`, interruptible by `interrupt()` while it runs."""

        def call(*args: Any) -> Any:
            with self._running_python():
                return func(*args)

        return call

    def python_batches(self, batches: Iterator[Any]) -> Iterator[Any]:
        """The batches of a Python source, each interruptible while it is produced."""
        iterator = iter(batches)
        while True:
            with self._running_python():
                try:
                    batch = next(iterator)
                except StopIteration:
                    return
            yield batch


class _InterruptibleWriter:
    """A Python output's writer whose `write_batch` can be interrupted."""

    def __init__(self, writer: Any, control: RunControl) -> None:
        self.write_batch = control.python_call(writer.write_batch)


@dataclass
class _OpenOutput:
    spec: SinkSpec
    commit: Callable[[], None]
    abort: Callable[[], None]


def _typed(spec: Any, adapter: InputAdapter | OutputAdapter) -> None:
    """Refuse a spec that is not one of :mod:`zoopipe_core.adapters.native_spec` (a dict)."""
    if spec is not None and not isinstance(spec, NativeSpec):
        raise TypeError(
            f"{type(adapter).__name__}.native_spec() returned a {type(spec).__name__}; return a spec "
            "of zoopipe_core.adapters (CsvSource, JsonlSink, ...) or None to go through Python"
        )


def _open_output(adapter: OutputAdapter, control: RunControl) -> _OpenOutput:
    spec = adapter.native_spec()
    _typed(spec, adapter)
    if spec is None:
        writer = adapter.open_writer()
        python = PythonSink(name=adapter.target_name, writer=_InterruptibleWriter(writer, control))
        return _OpenOutput(python, writer.commit, writer.abort)
    if not isinstance(spec, FileSpec):  # writes no file (the count-only output): nothing to publish
        return _OpenOutput(spec, lambda: None, lambda: None)
    pending = PendingOutput(spec.url)
    return _OpenOutput(spec.located(pending.location()), pending.commit, pending.abort)


def _open_source(adapter: InputAdapter, batch_size: int, control: RunControl) -> SourceSpec:
    spec = adapter.native_spec()
    _typed(spec, adapter)
    if spec is None:
        batches = control.python_batches(adapter.iter_batches(batch_size))
        return PythonSource(name=adapter.source_name, batches=batches)
    if isinstance(spec, FileSpec):
        # a shard of a CSV or JSON Lines file on a URL streams only its byte range
        byte_range = spec.read.byte_range if isinstance(spec, (CsvSource, JsonlSource)) else None
        return spec.located(open_input(spec.url, byte_range, random_access=spec.random_access))
    return spec


def _stage_input_keys(pipe: Pipe) -> list[str] | None:
    """The columns the Python stage's input dicts need: the model's fields when validation comes
    first and the model ignores extra columns (the reader still reads every column, so error
    records carry the whole row); None for every column."""
    if pipe.schema_model is None or pipe.pre_validation:
        return None
    return input_keys(pipe.schema_model)


def _close_source(spec: SourceSpec | None) -> None:
    if isinstance(spec, FileSpec) and spec.location is not None and spec.location.file is not None:
        spec.location.file.close()


def _describe(exc: BaseException, pipe: Pipe) -> PipelineError:
    if isinstance(exc, PipelineError):
        return exc
    if isinstance(exc, _native.ExecutionError):
        return PipelineError(f"{exc}; nothing was published")
    where = f"{pipe.input_adapter!r} -> {pipe.output_adapter!r}"
    error = PipelineError(f"pipe {where} failed with {type(exc).__name__}: {exc}; nothing was published")
    error.__cause__ = exc
    return error


def execute(pipe: Pipe, report: PipeReport, control: RunControl) -> None:
    """Run `pipe`, updating `report`. Raises PipelineError on failure, after aborting outputs;
    then tells every output the run ended (see OutputAdapter.run_ended)."""
    try:
        _execute(pipe, report, control)
    finally:
        for adapter in (pipe.output_adapter, pipe.error_output_adapter):
            if adapter is not None:
                try:
                    adapter.run_ended(report)
                except Exception:
                    logger.exception("%r failed to take the end of the run", adapter)


def _execute(pipe: Pipe, report: PipeReport, control: RunControl) -> None:
    from zoopipe_core.plugins import hooks

    progress = NativeProgress()
    report.mark_running(progress)
    executor = pipe.executor
    opened: list[_OpenOutput] = []
    source: SourceSpec | None = None
    set_up: list[Any] = []
    try:
        hooks().zoopipe_before_run(pipe=pipe)
        for transform in pipe.transforms:
            if hasattr(transform, "setup"):
                transform.setup()
            set_up.append(transform)
        source = _open_source(pipe.input_adapter, executor.batch_size, control)
        if pipe.schema_model is not None and isinstance(source, CsvSource):
            # a CSV reader keeps the empty fields of these columns as text, not None
            source = source.with_not_null_columns(list(not_null_columns(pipe.schema_model)))
        opened.append(_open_output(pipe.output_adapter, control))
        opened[0].spec = with_model_schema(opened[0].spec, pipe.schema_model, bool(pipe.post_validation))
        if pipe.error_output_adapter is not None:
            opened.append(_open_output(pipe.error_output_adapter, control))
        stage = None
        if pipe.schema_model is not None or pipe.pre_validation or pipe.post_validation:
            batch_stage = BatchStage(pipe.schema_model, pipe.pre_validation, pipe.post_validation)
            stage = control.python_call(batch_stage)
        summary = _native.run_pipe(
            source.to_native(),
            opened[0].spec.to_native(),
            opened[1].spec.to_native() if len(opened) > 1 else None,
            stage,
            executor.batch_size,
            executor.encode_workers,
            progress,
            control.stop,
            inline=_one_cpu_or_less(),
            input_keys=_stage_input_keys(pipe),
        )
        _close_source(source)
        source = None
        # Teardown is part of the run: if it fails, nothing is published.
        set_up, torn_down = [], set_up
        _teardown(torn_down)
        for output in opened:
            output.commit()
    except (_native.RunCancelled, PipeCancelled) as exc:
        _abort(opened)
        report.mark_finished(PipeStatus.CANCELLED, exception=exc)
        return
    except KeyboardInterrupt as exc:
        _abort(opened)
        report.mark_finished(PipeStatus.CANCELLED, exception=exc)
        raise
    except BaseException as exc:
        _abort(opened)
        error = _describe(exc, pipe)
        report.mark_finished(PipeStatus.FAILED, exception=error)
        hooks().zoopipe_on_error(pipe=pipe, error=error)
        raise error from exc
    finally:
        _close_source(source)
        try:
            _teardown(set_up)
        except Exception:
            logger.exception("a transform's teardown failed after the run had stopped")
    report.error_samples = summary["error_samples"]
    counts = (summary["read"], summary["success"], summary["errors"])
    report.mark_finished(PipeStatus.COMPLETED, counts=counts)
    if summary["errors"] and pipe.error_output_adapter is None:
        logger.warning(
            "%d of %d records failed and the pipe has no error_output_adapter; the first %d are in "
            "report.error_samples. Pass error_output_adapter=... to keep them all.",
            summary["errors"],
            summary["read"],
            len(report.error_samples),
        )
    hooks().zoopipe_after_run(pipe=pipe, report=report)


def _one_cpu_or_less() -> bool:
    """The engine running this pipe granted it at most one CPU: then the pipe reads, runs its
    stage and writes on one thread, since helper threads would compete with it for that CPU."""
    cpus = task_cpus()
    return cpus is not None and cpus <= 1


def _teardown(transforms: list[Any]) -> None:
    """Tear down every transform, last set up first; then raise the first teardown error."""
    first: BaseException | None = None
    for transform in reversed(transforms):
        if hasattr(transform, "teardown"):
            try:
                transform.teardown()
            except Exception as exc:
                first = first or exc
    if first is not None:
        raise first


def _abort(opened: list[_OpenOutput]) -> None:
    for output in opened:
        try:
            output.abort()
        except Exception:
            logger.exception("could not remove the partial output %s", output.spec.name)
