"""Runs one pipe to the end on the calling thread: opens inputs and outputs, calls the Rust
executor, then publishes every output or none. The only module that imports `_native`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from zoopipe_core import _native
from zoopipe_core.adapters.base import InputAdapter, OutputAdapter
from zoopipe_core.errors import PipelineError
from zoopipe_core.report import PipeReport, PipeStatus
from zoopipe_core.stage import BatchStage
from zoopipe_core.storage import PendingOutput, open_input

if TYPE_CHECKING:
    from zoopipe_core.pipe import Pipe

logger = logging.getLogger("zoopipe")

NativeProgress = _native.NativeProgress
StopToken = _native.StopToken


class PipeCancelled(Exception):
    """Raised inside a pipe's thread to stop Python work that ignores the stop request."""


@dataclass
class _OpenOutput:
    spec: dict[str, Any]
    commit: Callable[[], None]
    abort: Callable[[], None]


def _open_output(adapter: OutputAdapter) -> _OpenOutput:
    spec = adapter.native_spec()
    if spec is None:
        writer = adapter.open_writer()
        return _OpenOutput({"kind": "python", "writer": writer, "name": adapter.target_name},
                           writer.commit, writer.abort)
    spec = dict(spec)
    pending = PendingOutput(spec.pop("url"))
    spec.update(pending.spec())
    return _OpenOutput(spec, pending.commit, pending.abort)


def _open_source(adapter: InputAdapter, batch_size: int) -> dict[str, Any]:
    spec = adapter.native_spec()
    if spec is None:
        return {"kind": "python", "batches": iter(adapter.iter_batches(batch_size)),
                "name": adapter.source_name}
    spec = dict(spec)
    spec.update(open_input(spec.pop("url")))
    return spec


def _close_source(spec: dict[str, Any] | None) -> None:
    if spec and spec.get("file") is not None:
        spec["file"].close()


def _describe(exc: BaseException, pipe: "Pipe") -> PipelineError:
    if isinstance(exc, PipelineError):
        return exc
    if isinstance(exc, _native.ExecutionError):
        return PipelineError(f"{exc}; nothing was published")
    where = f"{pipe.input_adapter!r} -> {pipe.output_adapter!r}"
    error = PipelineError(f"pipe {where} failed with {type(exc).__name__}: {exc}; nothing was published")
    error.__cause__ = exc
    return error


def execute(pipe: "Pipe", report: PipeReport, stop: Any) -> None:
    """Run `pipe`, updating `report`. Raises PipelineError on failure, after aborting outputs."""
    from zoopipe_core.plugins import hooks

    progress = NativeProgress()
    report._start(progress)
    executor = pipe.executor
    opened: list[_OpenOutput] = []
    source: dict[str, Any] | None = None
    set_up: list[Any] = []
    try:
        hooks().zoopipe_before_run(pipe=pipe)
        for transform in pipe.transforms:
            if hasattr(transform, "setup"):
                transform.setup()
            set_up.append(transform)
        source = _open_source(pipe.input_adapter, executor.batch_size)
        opened.append(_open_output(pipe.output_adapter))
        if pipe.error_output_adapter is not None:
            opened.append(_open_output(pipe.error_output_adapter))
        stage = None
        if pipe.schema_model is not None or pipe.pre_validation or pipe.post_validation:
            stage = BatchStage(pipe.schema_model, pipe.pre_validation, pipe.post_validation)
        summary = _native.run_pipe(
            source,
            opened[0].spec,
            opened[1].spec if len(opened) > 1 else None,
            stage,
            executor.batch_size,
            executor.encode_workers,
            progress,
            stop,
        )
        _close_source(source)
        source = None
        for output in opened:
            output.commit()
    except (_native.RunCancelled, PipeCancelled) as exc:
        _abort(opened)
        report._finish(PipeStatus.CANCELLED, exception=exc)
        return
    except BaseException as exc:
        _abort(opened)
        error = _describe(exc, pipe)
        report._finish(PipeStatus.FAILED, exception=error)
        hooks().zoopipe_on_error(pipe=pipe, error=error)
        raise error from exc
    finally:
        _close_source(source)
        for transform in reversed(set_up):
            if hasattr(transform, "teardown"):
                transform.teardown()
    report.error_samples = summary["error_samples"]
    report._finish(PipeStatus.COMPLETED, counts=(summary["read"], summary["success"], summary["errors"]))
    if summary["errors"] and pipe.error_output_adapter is None:
        logger.warning(
            "%d of %d records failed and the pipe has no error_output_adapter; the first %d are in "
            "report.error_samples. Pass error_output_adapter=... to keep them all.",
            summary["errors"], summary["read"], len(report.error_samples),
        )
    hooks().zoopipe_after_run(pipe=pipe, report=report)


def _abort(opened: list[_OpenOutput]) -> None:
    for output in opened:
        try:
            output.abort()
        except Exception:  # noqa: BLE001 - keep aborting the others; the run's error is raised
            logger.exception("could not remove the partial output %s", output.spec.get("name"))
