"""The worker side of a parallel map: one batch of items through the user's function.

A batch is one engine task. It calls the function once per item (a tuple is spread as
positional arguments, a dict as keyword arguments), keeps every exception as data (a
:class:`~zoopipe_core.parallel.map.failures.Failure` at that item's position), retries the items
whose exception matches ``retry_on`` with exponential backoff, and, when a checkpoint is kept,
encodes the batch's journal entries here, on the worker, so the driver only appends bytes.

With a per-item ``timeout`` the items run on a runner thread while the task's own thread watches
the clock: an item over its time gets a ``TimeoutError``, its call is interrupted (an exception
raised in it at its next Python instruction) and abandoned, and a fresh runner thread goes on with
the next item at once, so one stuck call never holds the rest of the batch.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import itertools
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from zoopipe_core.engines import SharedRef, current_worker
from zoopipe_core.engines.tasks import interrupt_thread
from zoopipe_core.parallel.map.failures import Failure

#: Seconds between the watchdog's looks at a stop request while an item runs.
_WATCH_TICK = 0.05

#: The longest pause between two attempts of an item, whatever the backoff doubles to.
MAX_BACKOFF = 30.0


@dataclasses.dataclass(frozen=True)
class MapJob:
    """What every batch of one map shares: by name with each batch when its callables are plain
    functions, else shared with each worker once (see ``ParallelMap._ship``).

    Example:
        >>> job = MapJob(pow)
        >>> run_batch(job, [(2, 3), {"base": 3, "exp": 2}]).outputs()
        ([8, 9], {})
    """

    fn: Callable[..., Any]
    timeout: float | None = None
    retries: int = 0
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    backoff: float = 0.1
    journal: bool = False
    key: Callable[[Any], Any] | None = None


@dataclasses.dataclass
class BatchResult:
    """How one batch ended: a value per item (None where it failed), the failures by position,
    the seconds the items took on the worker, and the journal frame when a checkpoint is kept.

    With a frame, the values and failures travel only inside it (``values`` is None): the worker
    pickles them once, and :meth:`outputs` reads them back on the driver.

    Example:
        >>> from zoopipe_core.parallel.map.journal import encode_batch
        >>> BatchResult(None, {}, 0.1, encode_batch([2, 3], [4, 9], {})).outputs()
        ([4, 9], {})
    """

    values: list[Any] | None  # None when they travel in the frame
    failures: dict[int, Failure]
    seconds: float
    frame: bytes | None = None

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Unpickled on the driver, by the engine's thread that receives results: the frame is
        # read there, not on the map's own thread, which hands out the values.
        self.__dict__.update(state)
        if self.values is None and self.frame is not None:
            self.values, self.failures = self.outputs()

    def outputs(self) -> tuple[list[Any], dict[int, Failure]]:
        """The values (None where an item failed) and the failures by position."""
        if self.values is not None or self.frame is None:
            return self.values or [], self.failures
        from zoopipe_core.parallel.map.journal import batch_outputs

        return batch_outputs(self.frame)


def call_item(fn: Callable[..., Any], arg: Any) -> Any:
    """Call ``fn`` with one item: a tuple spreads as positional arguments, a dict as keyword
    arguments, anything else is the one argument.

    Example:
        >>> call_item(max, (3, 9)), call_item(dict, {"a": 1}), call_item(abs, -2)
        (9, {'a': 1}, 2)
    """
    if isinstance(arg, tuple):
        return fn(*arg)
    if isinstance(arg, dict):
        return fn(**arg)
    return fn(arg)


def run_batch(job: MapJob | SharedRef, items: Sequence[Any]) -> BatchResult:
    """Run ``items`` through the job's function on this worker; never raises for an item.

    Example:
        >>> result = run_batch(MapJob(lambda x: 10 // x), [5, 0, 2])
        >>> result.values, sorted(result.failures), result.failures[1].remote.exc_type
        ([2, None, 5], [1], 'ZeroDivisionError')
    """
    if isinstance(job, SharedRef):
        job = job.get()
    assert isinstance(job, MapJob)
    where = _where()
    started = time.perf_counter()
    # The item types, looked at once (at C speed) per batch; a range slice holds only ints.
    kinds: set[type] = {int} if isinstance(items, range) else set(map(type, items))
    if job.timeout is not None:
        values, failures = _TimedBatch(job, items, where).run()
    elif job.retries:
        values, failures = _run_with_retries(job, items, where)
    else:
        values, failures = _run_plain(job.fn, items, where, kinds)
    seconds = time.perf_counter() - started
    if job.journal:  # the values go back inside the frame only: pickled once
        return BatchResult(None, {}, seconds, _journal_frame(job, items, values, failures, kinds))
    return BatchResult(values, failures, seconds)


def _where() -> str:
    worker = current_worker()
    if worker is None:
        return "this process"
    return f"{worker.engine} worker {worker.worker_id} on {worker.host}"


def _run_plain(
    fn: Callable[..., Any], items: Sequence[Any], where: str, kinds: set[type]
) -> tuple[list[Any], dict[int, Failure]]:
    # The hot loop of a map of cheap items: the calls run inside list.extend(map(...)), at C
    # speed. When one raises, the values before it are in the list already (extend keeps what
    # it appended), so the loop records the failure and goes on after it: no item runs twice.
    if any(issubclass(kind, (tuple, dict)) for kind in kinds):
        calls: Callable[[Any], Any] = functools.partial(call_item, fn)
        if kinds == {tuple}:
            calls = functools.partial(_spread, fn)
    else:
        calls = fn
    values: list[Any] = []
    failures: dict[int, Failure] = {}
    start = 0
    while start < len(items):
        try:
            values.extend(map(calls, itertools.islice(items, start, None)))
            break
        except Exception as exc:
            index = len(values)
            failures[index] = Failure.of(exc, where)
            values.append(None)
            start = index + 1
    return values, failures


def _spread(fn: Callable[..., Any], arg: tuple[Any, ...]) -> Any:
    return fn(*arg)


def _run_with_retries(job: MapJob, items: Sequence[Any], where: str) -> tuple[list[Any], dict[int, Failure]]:
    values: list[Any] = []
    failures: dict[int, Failure] = {}
    for index, arg in enumerate(items):
        attempt = 0
        while True:
            try:
                values.append(call_item(job.fn, arg))
                break
            except Exception as exc:
                if attempt < job.retries and isinstance(exc, job.retry_on):
                    time.sleep(backoff_seconds(job.backoff, attempt))
                    attempt += 1
                    continue
                failures[index] = Failure.of(exc, where)
                values.append(None)
                break
    return values, failures


def backoff_seconds(base: float, attempt: int) -> float:
    """The pause before retry ``attempt + 1``: ``base`` doubled per earlier retry, at most
    :data:`MAX_BACKOFF`.

    Example:
        >>> [backoff_seconds(0.1, n) for n in range(4)]
        [0.1, 0.2, 0.4, 0.8]
    """
    return float(min(base * 2**attempt, MAX_BACKOFF))


class _Abandoned(BaseException):
    """Raised in a runner thread whose item ran out of time: it stops at its next Python
    instruction and records nothing (the watchdog already recorded the TimeoutError)."""


class _TimedBatch:
    """Runs a batch's items on runner threads under a per-item timeout, watched from the task's
    own thread (which also receives the engine's stop requests)."""

    def __init__(self, job: MapJob, items: Sequence[Any], where: str) -> None:
        assert job.timeout is not None
        self._job = job
        self._timeout = job.timeout
        self._items = items
        self._where = where
        self._values: list[Any] = [None] * len(items)
        self._failures: dict[int, Failure] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._generation = 0  # the runner thread allowed to record; older ones are abandoned
        self._index = 0  # the item running now
        self._attempt = 0  # its attempt number (0: first)
        self._started = 0.0  # when its attempt started
        self._pausing_until: float | None = None  # a retry's backoff: not counted as running
        self._finished = False
        self._runner: threading.Thread | None = None

    def run(self) -> tuple[list[Any], dict[int, Failure]]:
        if not self._items:
            return [], {}
        self._start_runner(0, 0)
        try:
            with self._lock:
                while not self._finished:
                    wait = self._time_left()
                    if wait <= 0:
                        self._time_out()
                        continue
                    self._changed.wait(min(wait, _WATCH_TICK))
        except BaseException:
            # A stop request (the engine cancels this batch): leave the runner behind, stopped.
            with self._lock:
                self._generation += 1
            self._interrupt_runner()
            raise
        return self._values, self._failures

    def _time_left(self) -> float:
        now = time.monotonic()
        if self._pausing_until is not None:
            return max(self._pausing_until - now, _WATCH_TICK)
        return self._started + self._timeout - now

    def _time_out(self) -> None:
        """Called with the lock held: the running item is over its time."""
        index, attempt = self._index, self._attempt
        self._generation += 1
        self._interrupt_runner()
        error = TimeoutError(
            f"item {index} ({_short_repr(self._items[index])}) ran longer than its timeout of "
            f"{self._timeout:g} s on {self._where} and was interrupted; raise the map's timeout "
            "if it needs longer"
        )
        if attempt < self._job.retries and isinstance(error, self._job.retry_on):
            self._start_runner(index, attempt + 1, pause=backoff_seconds(self._job.backoff, attempt))
            return
        self._failures[index] = Failure.raised(error, self._where)
        if index + 1 < len(self._items):
            self._start_runner(index + 1, 0)
        else:
            self._finished = True

    def _interrupt_runner(self) -> None:
        runner = self._runner
        if runner is not None and runner.ident is not None and runner.is_alive():
            interrupt_thread(runner.ident, _Abandoned)

    def _start_runner(self, index: int, attempt: int, pause: float = 0.0) -> None:
        """Start a runner thread at item ``index`` (called with the lock held, or before the
        watch begins)."""
        generation = self._generation
        self._index, self._attempt = index, attempt
        self._started = time.monotonic() + pause
        self._pausing_until = self._started if pause else None
        context = contextvars.copy_context()  # the task's progress channel and worker info
        runner = threading.Thread(
            target=context.run,
            args=(self._run_from, generation, index, attempt, pause),
            name="zoopipe-map-item",
            daemon=True,
        )
        self._runner = runner
        runner.start()

    def _run_from(self, generation: int, index: int, attempt: int, pause: float) -> None:
        try:
            if self._resume_after(generation, pause):
                self._run_items(generation, index, attempt)
        except _Abandoned:
            return

    def _resume_after(self, generation: int, pause: float) -> bool:
        """Sleep a retry's backoff, then start the item's clock; False when this runner was
        superseded meanwhile (its item timed out) and must stop."""
        if pause:
            time.sleep(pause)
        with self._lock:
            if generation != self._generation:
                return False
            self._pausing_until = None
            self._started = time.monotonic()
            return True

    def _run_items(self, generation: int, index: int, attempt: int) -> None:
        job, items = self._job, self._items
        while index < len(items):
            try:
                value, failure = call_item(job.fn, items[index]), None
            except _Abandoned:
                return
            except Exception as exc:
                if attempt < job.retries and isinstance(exc, job.retry_on):
                    pause = backoff_seconds(job.backoff, attempt)
                    with self._lock:
                        if generation != self._generation:
                            return
                        self._attempt = attempt = attempt + 1
                        self._pausing_until = time.monotonic() + pause
                    if not self._resume_after(generation, pause):
                        return
                    continue
                value, failure = None, Failure.of(exc, self._where)
            with self._lock:
                if generation != self._generation:
                    return  # timed out meanwhile: the watchdog recorded it
                if failure is None:
                    self._values[index] = value
                else:
                    self._failures[index] = failure
                index, attempt = index + 1, 0
                self._index, self._attempt = index, 0
                self._started = time.monotonic()
                if index >= len(items):
                    self._finished = True
                    self._changed.notify()


def _short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _journal_frame(
    job: MapJob, items: Sequence[Any], values: list[Any], failures: dict[int, Failure], kinds: set[type]
) -> bytes:
    from zoopipe_core.parallel.map.journal import encode_batch

    return encode_batch(items, values, failures, job.key, kinds=kinds)
