"""PipeManager: many pipes, or one pipe split into shards, run in parallel on an engine.

The manager uses only the engine interface (submit_dedicated, futures, progress, cancel,
shutdown), so it runs unchanged on local processes, Ray or Dask. Each pipe is one task
(``zoopipe_core.parallel.worker``) on a worker reserved for it (a Ray actor on RayEngine)
that streams its counts while it runs; a failed task can be rerun (``retries``), which is safe
because every output is published atomically under a name the rerun overwrites. See
``docs/parallel.md``.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

from zoopipe_core.adapters.dataset import begin_dataset, finish_dataset
from zoopipe_core.engines import Engine
from zoopipe_core.errors import PipelineError
from zoopipe_core.parallel.cleanup import SETTLE_GRACE, remove_leftovers
from zoopipe_core.parallel.exit_hooks import Terminated, handle_sigterm, running_managers
from zoopipe_core.parallel.merging import MergeStopped, run_merge
from zoopipe_core.parallel.report import FlowReport, describe_failure, flow_status, running_ram
from zoopipe_core.parallel.shards import ShardPlan, plan_shards
from zoopipe_core.parallel.worker import check_pipes, run_pipe_task
from zoopipe_core.pipe.pipe import Pipe
from zoopipe_core.pipe.report import PipeReport, PipeStatus

_log = logging.getLogger("zoopipe")


@dataclasses.dataclass(eq=False)
class _Slot:
    """One pipe of the manager: its task's future, its report, and how often it ran."""

    index: int
    pipe: Pipe
    report: PipeReport
    future: concurrent.futures.Future[Any] | None = None
    attempts: int = 0
    failures: list[BaseException] = dataclasses.field(default_factory=list)
    done: bool = False


class PipeManager:
    """Run pipes in parallel on an engine, with live per-pipe and combined reports.

    ``engine`` is an :class:`~zoopipe_core.engines.Engine`, a registered name (``"multiprocess"``,
    ``"ray"``, ``"dask"``) or None for a new ``MultiProcessEngine``. An engine the manager
    creates (from a name or None) is started for each run and shut down when it ends. An engine
    object you pass is yours: the manager starts it if it is stopped and never shuts it down,
    so one engine, started once, serves every manager you give it; shut it down with
    ``engine.shutdown()`` or a ``with engine:`` block (at the latest, it is shut down when the
    interpreter exits). ``retries`` reruns a failed pipe that many times (its outputs are
    atomic, so a rerun never duplicates records).

    Example:
        >>> import os, tempfile
        >>> from zoopipe_core import Pipe, PipeManager, JSONInputAdapter, JSONOutputAdapter
        >>> from zoopipe_core.engines import MultiProcessEngine
        >>> folder = tempfile.mkdtemp()
        >>> def pipe(n):
        ...     source = os.path.join(folder, f"in{n}.jsonl")
        ...     _ = open(source, "w").write('{"n": 1}\\n{"n": 2}\\n')
        ...     target = os.path.join(folder, f"out{n}.jsonl")
        ...     return Pipe(JSONInputAdapter(source), JSONOutputAdapter(target))
        >>> with PipeManager([pipe(1), pipe(2)], engine=MultiProcessEngine(max_workers=2)) as manager:
        ...     manager.wait()
        True
        >>> manager.report.total_processed, [r.is_finished for r in manager.pipe_reports]
        (4, [True, True])
    """

    def __init__(
        self, pipes: Sequence[Pipe], engine: Engine | str | None = None, *, retries: int = 0
    ) -> None:
        from zoopipe_core.plugins import resolve_engine

        pipes = check_pipes(pipes)
        if not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be an int >= 0, got {retries!r}")
        self._engine: Engine = resolve_engine(engine)
        # Only an engine made here is this manager's to shut down; a passed one may serve others.
        self._owns_engine = engine is None or isinstance(engine, (str, type))
        self._retries = retries
        self._max_running: int | None = None
        self._merges: list[tuple[Any, list[Any]]] = []
        self._datasets: list[tuple[Any, list[Any]]] = []
        self._merge_stopped = False
        self._slots = [_Slot(i, pipe, PipeReport(i)) for i, pipe in enumerate(pipes)]
        self._lock = threading.RLock()
        # Held while deciding to submit and submitting, and while shutdown() sets _stopping, so
        # nothing is submitted once a shutdown began (a submit would restart a stopped engine).
        self._submit_lock = threading.RLock()
        self._started = False
        self._stopping = False
        self._abandoned = False
        self._done = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._unsubscribe: Any = None
        self._key = ""
        self._start_time: float | None = None
        self._end_time: float | None = None
        self._started_at: datetime.datetime | None = None
        self._ended_at: datetime.datetime | None = None
        self._peak_ram = 0
        self._merge_error: BaseException | None = None
        self._stop_timeout = 5.0

    @classmethod
    def parallelize_pipe(
        cls,
        pipe: Pipe,
        workers: int,
        should_merge: bool = False,
        executor: Any = None,
        engine: Engine | str | None = None,
        retries: int = 0,
    ) -> PipeManager:
        """A manager running ``pipe`` as shards: its input split in up to ``workers`` parts
        (byte ranges of a CSV or JSON Lines file; the files of a list, directory, prefix or glob,
        balanced by bytes; see docs/parallel.md), each shard writing
        ``<output>.part-NNNNN.<ext>`` (and the same for the error output). With
        ``should_merge=True`` the parts become one file per output once every shard succeeded.

        ``executor`` is the executor each shard uses (the pipe's own by default). A list of more
        files than ``workers`` runs one shard per file, at most ``workers`` at once. Raises
        ShardingError when the input cannot be split (a compressed file, a Python iterable).

        Example:
            >>> import os, tempfile
            >>> from zoopipe_core import Pipe, PipeManager, JSONInputAdapter, JSONOutputAdapter
            >>> from zoopipe_core.engines import MultiProcessEngine
            >>> folder = tempfile.mkdtemp()
            >>> files = []
            >>> for n in range(3):
            ...     files.append(os.path.join(folder, f"part{n}.jsonl"))
            ...     _ = open(files[-1], "w").write(f'{{"n": {n}}}\\n')
            >>> out = os.path.join(folder, "all.jsonl")
            >>> manager = PipeManager.parallelize_pipe(
            ...     Pipe(JSONInputAdapter(files), JSONOutputAdapter(out)), workers=2,
            ...     should_merge=True, engine=MultiProcessEngine(max_workers=2))
            >>> manager.run(show_progress=False).success_count
            3
            >>> open(out).read()
            '{"n":0}\\n{"n":1}\\n{"n":2}\\n'
        """
        plan: ShardPlan = plan_shards(pipe, workers, should_merge, executor)
        manager = cls(plan.pipes, engine=engine, retries=retries)
        manager._max_running = workers
        manager._merges = plan.merges
        manager._datasets = plan.datasets
        return manager

    # ------------------------------------------------------------------ properties

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def pipes(self) -> list[Pipe]:
        """The pipes run by this manager (for parallelize_pipe: one per shard)."""
        return [slot.pipe for slot in self._slots]

    @property
    def pipe_count(self) -> int:
        return len(self._slots)

    @property
    def is_running(self) -> bool:
        """True from start() until every pipe ended and merging is done."""
        return self._started and not self._done.is_set()

    @property
    def pipe_reports(self) -> list[PipeReport]:
        """One live report per pipe: counts stream from the workers while the pipes run."""
        return [slot.report for slot in self._slots]

    def get_pipe_report(self, index: int) -> PipeReport:
        """The report of pipe ``index`` (zero-based)."""
        if not -len(self._slots) <= index < len(self._slots):
            raise IndexError(f"pipe index {index} out of range: this manager has {len(self._slots)} pipes")
        return self._slots[index].report

    @property
    def report(self) -> FlowReport:
        """The combined report of every pipe, as of now."""
        with self._lock:
            reports = self.pipe_reports
            start, end = self._start_time, self._end_time
            finished = self._done.is_set()
            return FlowReport.combine(
                reports,
                status=flow_status(
                    reports,
                    started=self._started,
                    finished=finished,
                    merge_error=self._merge_error,
                    merge_stopped=self._merge_stopped,
                ),
                duration=((end or time.monotonic()) - start) if start is not None else 0.0,
                ram_bytes=self._peak_ram if finished else running_ram(reports),
                merge_error=self._merge_error,
                name=self._name,
                start_time=self._started_at,
                end_time=self._ended_at,
            )

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Submit every pipe to the engine and return. RuntimeError if already running."""
        with self._submit_lock:
            with self._lock:
                if self.is_running:
                    raise RuntimeError("this PipeManager is already running; wait() or shutdown() first")
                if not self._engine.is_running:
                    self._engine.start()
                self._key = f"zoopipe-manager-{uuid.uuid4().hex[:12]}"
                self._stopping = False
                self._abandoned = False
                self._merge_error = None
                self._merge_stopped = False
                self._peak_ram = 0
                self._done = threading.Event()
                for slot in self._slots:
                    slot.report = PipeReport(slot.index)
                    slot.pipe.report = slot.report  # pipe.report reads the same live report
                    slot.future, slot.attempts, slot.failures, slot.done = None, 0, [], False
                self._start_time, self._end_time = time.monotonic(), None
                self._started_at, self._ended_at = datetime.datetime.now(datetime.timezone.utc), None
                self._unsubscribe = self._engine.on_progress(self._on_progress)
                self._started = True
                self._stop_timeout = 5.0
                running_managers.add(self)
                handle_sigterm()
            try:
                for target, _ in self._datasets:
                    begin_dataset(target)  # the directory is not whole while its parts are replaced
                self._submit_queued()
            except BaseException:
                self._stopping = True
                for slot in self._slots:
                    if slot.future is not None and not slot.future.done():
                        self._engine.cancel(slot.future)
                self._finish_run()
                raise
            self._supervisor = threading.Thread(target=self._supervise, name="zoopipe-manager", daemon=True)
            self._supervisor.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every pipe ended (and merging is done). True if so, False on timeout."""
        if not self._started:
            raise RuntimeError("this PipeManager was not started; call start() or run()")
        try:
            return self._done.wait(timeout)
        except (KeyboardInterrupt, SystemExit):
            # Ctrl-C or SIGTERM: stop every pipe and clean up before the exception goes on.
            self.shutdown()
            raise

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop every pipe: each is asked to stop (it publishes nothing) and is stopped forcefully
        after ``timeout`` seconds. Nothing is merged (a merge task running on the engine is
        cancelled; a merge in this process finishes), and the run's files are removed: the
        temporary files of stopped pipes, and the parts of shards that already finished when
        they were to be merged. A no-op when not running."""
        if not self.is_running:
            return
        with self._submit_lock, self._lock:
            self._stopping = True
            self._stop_timeout = timeout
            futures = [s.future for s in self._slots if s.future is not None and not s.future.done()]
        while True:
            try:
                if self._owns_engine:
                    # Cancels every task, forcefully after `timeout`; returns once the work stopped.
                    self._engine.shutdown(timeout)
                else:
                    for future in futures:
                        self._engine.cancel(future)  # the engine's own grace period applies
                break
            except (KeyboardInterrupt, Terminated):
                continue  # a second Ctrl-C: already stopping, and the stop is bounded
        # The supervisor settles the cancelled futures and removes the run's files.
        while True:
            try:
                # Beyond the supervisor's own bound for the files to go (remove_leftovers).
                settled = self._done.wait(timeout + SETTLE_GRACE + 5.0)
                break
            except (KeyboardInterrupt, Terminated):
                continue
        if not settled:
            _log.warning("%r: the engine left tasks unresolved after shutdown; marking them cancelled", self)
            self._abandoned = True
            self._done.wait()

    def run(self, show_progress: bool = True) -> FlowReport:
        """Start, show progress on stderr, wait; raise PipelineError naming every pipe that
        failed (or the merge error) once all have ended. Returns the final FlowReport."""
        from zoopipe_core.pipe.progress import ProgressDisplay

        self.start()
        try:
            if show_progress:
                with ProgressDisplay(lambda: self.report):
                    self.wait()
            else:
                self.wait()
        except BaseException:
            self.shutdown()
            raise
        report = self.report
        if report.has_error:
            raise self.failure_error(report)
        return report

    def failure_error(self, report: FlowReport) -> PipelineError:
        """The error ``run()`` raises for a failed run: each failed pipe (its number, input and
        output) with the reason, and a failed merge. ``zoopipe run`` prints it."""
        failures = sorted(report.failures.items())
        lines = [f"{self._name(i)} failed: {describe_failure(exc)}" for i, exc in failures]
        if report.merge_error is not None:
            lines.append(f"merging the shards failed: {report.merge_error}")
        error = PipelineError(
            f"{len(report.failures)} of {report.pipe_count} pipes failed"
            + (" and nothing was merged" if self._merges else "")
            + ":\n  "
            + "\n  ".join(lines)
        )
        error.__cause__ = report.merge_error or next(iter(report.failures.values()), None)
        return error

    def _name(self, index: int) -> str:
        """How a report names pipe ``index``: its number, input and output."""
        pipe = self._slots[index].pipe
        return f"pipe {index} ({pipe.input_adapter.source_name} -> {pipe.output_adapter.target_name})"

    def __enter__(self) -> PipeManager:
        self.start()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.shutdown()
        else:
            self.wait()

    def __repr__(self) -> str:
        return f"<PipeManager {self.pipe_count} pipes on {self._engine!r}, {self.report.status.value}>"

    # ------------------------------------------------------------------ the run

    def _submit_queued(self) -> None:
        """Submit pipes not yet running, up to the concurrency limit. Only the thread that
        runs start() (before the supervisor exists) and the supervisor call it."""
        with self._submit_lock:
            with self._lock:
                if self._stopping:
                    return
                running = sum(1 for s in self._slots if s.future is not None and not s.done)
                room = len(self._slots) if self._max_running is None else self._max_running - running
                ready = [s for s in self._slots if s.future is None and not s.done][: max(room, 0)]
            for slot in ready:  # outside self._lock: progress callbacks take it on an engine thread
                self._submit(slot)

    def _submit(self, slot: _Slot) -> None:
        slot.attempts += 1
        slot.future = self._engine.submit_dedicated(
            run_pipe_task, slot.pipe, self._key, slot.index, slot.attempts
        )

    def _on_progress(self, key: str, payload: dict[str, Any]) -> None:
        if key != self._key:
            return
        with self._lock:
            index = payload.get("pipe_index")
            if not isinstance(index, int) or not 0 <= index < len(self._slots):
                return
            slot = self._slots[index]
            if payload.get("attempt") != slot.attempts or slot.done:
                return  # from an earlier attempt
            slot.report.update_from_worker(payload)
            self._peak_ram = max(self._peak_ram, running_ram(self.pipe_reports))

    def _supervise(self) -> None:
        try:
            while True:
                with self._lock:
                    pending = [s.future for s in self._slots if s.future is not None and not s.done]
                    queued = any(s.future is None and not s.done for s in self._slots)
                if not pending and not queued:
                    break
                if not pending:  # stopping with pipes never submitted
                    self._cancel_queued()
                    continue
                if self._abandoned:
                    self._cancel_unfinished()
                    break
                # A future cancelled through engine.cancel() is done() at once, but wait() only
                # sees it once its engine notifies it (engines that need not, do not).
                finished = [f for f in pending if f.done()] or concurrent.futures.wait(
                    pending, timeout=0.25, return_when=concurrent.futures.FIRST_COMPLETED
                )[0]
                for future in finished:
                    self._settle(future)
                if self._stopping:
                    self._cancel_queued()
                else:
                    self._submit_queued()
            completed = all(s.report.status == PipeStatus.COMPLETED for s in self._slots)
            if not self._stopping and completed and (self._merges or self._datasets):
                self._merge()
            else:
                self._remove_leftovers()
        except BaseException as exc:
            _log.exception("the PipeManager's supervisor failed")
            self._merge_error = self._merge_error or exc
        finally:
            self._finish_run()

    def _settle(self, future: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            slot = next(s for s in self._slots if s.future is future)
            report = slot.report
            if future.cancelled():
                slot.done = True
                report.mark_finished(PipeStatus.CANCELLED)
                return
            exc = future.exception()
            if exc is None:
                final = future.result()
                report.update_from_worker(final)
                slot.done = True
                counts = (final["total_processed"], final["success_count"], final["error_count"])
                report.mark_finished(PipeStatus.COMPLETED, counts=counts)
                return
            slot.failures.append(exc)
            retry = not self._stopping and slot.attempts <= self._retries
            if not retry:
                slot.done = True
                report.mark_finished(PipeStatus.FAILED, exception=exc)
                return
            _log.warning(
                "pipe %d failed (attempt %d of %d), running it again: %s",
                slot.index,
                slot.attempts,
                self._retries + 1,
                exc,
            )
            report.reset_counts()
        with self._submit_lock:
            error: BaseException | None = exc
            if not self._stopping:
                try:
                    self._submit(slot)
                    return
                except Exception as resubmit_error:
                    error = resubmit_error
            with self._lock:
                slot.done = True
                report.mark_finished(PipeStatus.FAILED, exception=error)

    def _cancel_unfinished(self) -> None:
        with self._lock:
            for slot in self._slots:
                if not slot.done:
                    slot.done = True
                    slot.report.mark_finished(PipeStatus.CANCELLED)

    def _cancel_queued(self) -> None:
        with self._lock:
            for slot in self._slots:
                if slot.future is None and not slot.done:
                    slot.done = True
                    slot.report.mark_finished(PipeStatus.CANCELLED)

    def _merge(self) -> None:
        """Every shard succeeded: merge each output's parts (on a worker when they are on a
        store, see :mod:`zoopipe_core.parallel.merging`), or mark its dataset directory whole."""
        for target, parts in self._merges:
            try:
                run_merge(self._engine, target, parts, self._submit_merge, lambda: self._stopping)
            except MergeStopped:
                _log.warning("%r: stopped while merging; nothing was merged, the parts are removed", self)
                self._merge_stopped = True
                self._remove_leftovers()
                return
            except Exception as exc:
                _log.error("merging the shards into %s failed: %s", getattr(target, "path", target), exc)
                self._merge_error = exc
                return
        for target, parts in self._datasets:
            try:
                finish_dataset(target, parts)
            except Exception as exc:
                _log.error("finishing the dataset %s failed: %s", getattr(target, "path", target), exc)
                self._merge_error = exc
                return

    def _submit_merge(self, fn: Any, *args: Any) -> concurrent.futures.Future[Any] | None:
        """Submit a merge task, or None once the run is stopping (shutdown() may be stopping
        the engine: a submit would start it again)."""
        with self._submit_lock:
            if self._stopping:
                return None
            return self._engine.submit(fn, *args)

    def _remove_leftovers(self) -> None:
        """What a run that did not complete leaves (see :func:`remove_leftovers`)."""
        unfinished = [s.pipe for s in self._slots if s.report.status != PipeStatus.COMPLETED]
        stopped_parts = [part for _, parts in self._merges for part in parts] if self._stopping else []
        wait = self._stop_timeout + SETTLE_GRACE if self._stopping else 0.0
        remove_leftovers(unfinished, stopped_parts, wait)

    def _finish_run(self) -> None:
        with self._lock:
            if self._unsubscribe is not None:
                self._unsubscribe()
                self._unsubscribe = None
            self._end_time = time.monotonic()
            self._ended_at = datetime.datetime.now(datetime.timezone.utc)
        if self._owns_engine:
            self._engine.shutdown()
        running_managers.discard(self)
        self._done.set()


__all__ = ["FlowReport", "PipeManager"]
