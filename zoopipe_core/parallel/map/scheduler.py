"""The driver side of a parallel map: lazy input, bounded work in flight, results in order.

One :class:`MapRun` per ``imap`` call. It pulls items from the input only as batches are
submitted, keeps at most ``max_pending`` batches in flight on the engine, and hands results out
as soon as they may be yielded (in input order, or as they complete); a result is dropped as
soon as it has been yielded. Closing the run (the loop ended, ``break``, an exception, the async
iterator closed) cancels every batch still in flight.

Items move in *segments*: the items of one batch, kept in input order on the driver until they
are yielded. A batch whose worker died is split in two and each half submitted again (no retry
is used up: which item killed the worker is not known), down to the one item that did; that
item is retried under ``retries``, or fails with :class:`~zoopipe_core.engines.WorkerLost` as its
result. Results recorded in a checkpoint journal become segments that are done at once.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import dataclasses
import itertools
import threading
import time
from collections.abc import AsyncGenerator, Generator, Iterator, Sequence
from typing import Any

from zoopipe_core.engines import Engine, SharedRef, WorkerLost
from zoopipe_core.parallel.map.batching import MAX_BATCH, BatchSizer
from zoopipe_core.parallel.map.failures import Failure
from zoopipe_core.parallel.map.worker import BatchResult, MapJob, run_batch

#: Most input items the driver holds at once (in flight, or done and not yielded yet): with
#: MAX_BATCH, what bounds the driver's memory whatever ``max_pending`` says.
MAX_ITEMS_HELD = 4 * MAX_BATCH


@dataclasses.dataclass(frozen=True)
class MapOptions:
    """How one ``imap`` call yields: see :meth:`ParallelMap.imap`."""

    timeout: float | None = None
    safe_exceptions: bool = False
    keep_order: bool = True
    ret_args: bool = False


@dataclasses.dataclass(eq=False)
class _Segment:
    """Consecutive input items, submitted as one batch (or in parts after a lost worker)."""

    args: Sequence[Any]  # a list, or a range slice of a range input
    values: list[Any]
    failures: dict[int, Failure]
    parts_pending: int = 0
    done: bool = False


@dataclasses.dataclass(eq=False)
class _Part:
    """One submitted batch: ``length`` items of ``segment`` from ``offset``."""

    segment: _Segment
    offset: int
    length: int
    submitted_at: float
    attempt: int = 0


class _Completions:
    """Finished engine futures, pushed from engine threads, taken by the driver loop (a thread
    or an asyncio task)."""

    def __init__(self) -> None:
        self._futures: collections.deque[concurrent.futures.Future[Any]] = collections.deque()
        self._condition = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop, self._event = loop, asyncio.Event()

    def push(self, future: concurrent.futures.Future[Any]) -> None:
        with self._condition:
            self._futures.append(future)
            self._condition.notify()
        loop, event = self._loop, self._event
        if loop is not None and event is not None:
            # RuntimeError: the loop is closed, nobody waits any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)

    def take(self, block: bool) -> concurrent.futures.Future[Any] | None:
        with self._condition:
            while block and not self._futures:
                self._condition.wait()
            return self._futures.popleft() if self._futures else None

    async def take_async(self) -> concurrent.futures.Future[Any]:
        assert self._event is not None
        while True:
            future = self.take(block=False)
            if future is not None:
                return future
            self._event.clear()
            future = self.take(block=False)  # pushed between the take and the clear
            if future is not None:
                return future
            await self._event.wait()


class MapRun:
    """One pass of a parallel map over an input; iterate it (or ``async for``) for the results.

    ``job`` is the shared :class:`MapJob` (or the job itself when the engine cannot share it),
    ``recorded`` the results a checkpoint journal holds (key -> (ok, value)), ``journal`` the
    journal new results are appended to, ``progress`` the display updated per batch.

    Example:
        >>> from zoopipe_core.engines import MultiProcessEngine
        >>> with MultiProcessEngine(max_workers=2) as engine:
        ...     run = MapRun(engine, MapJob(abs), iter([-1, 2, -3]), MapOptions(), workers=2,
        ...                  max_pending=4, batch_size=None, total=3)
        ...     list(run)
        [1, 2, 3]
    """

    def __init__(
        self,
        engine: Engine,
        job: MapJob | SharedRef,
        items: Iterator[Any] | Any,
        options: MapOptions,
        *,
        workers: int,
        max_pending: int,
        batch_size: int | None,
        total: int | None,
        retries: int = 0,
        retry_on: tuple[type[BaseException], ...] = (Exception,),
        recorded: dict[str, tuple[bool, Any]] | None = None,
        replay_failures: bool = False,
        key: Any = None,
        journal: Any = None,
        progress: Any = None,
    ) -> None:
        self._engine = engine
        self._job = job
        self._items = items
        self._options = options
        self._workers = max(1, workers)
        self._max_pending = max_pending
        self._sizer = BatchSizer(batch_size, workers)
        self._remaining = total
        self._retries = retries
        self._retry_on = retry_on
        self._recorded = recorded or {}
        self._replay_failures = replay_failures
        self._key = key
        self._journal = journal
        self._progress = progress
        self._exhausted = False
        # A range input is cut into range slices (one batch pickles into a few bytes).
        self._range: range | None = items if isinstance(items, range) else None
        self._position = 0
        self._in_flight: dict[concurrent.futures.Future[Any], _Part] = {}
        self._ordered: collections.deque[_Segment] = collections.deque()  # keep_order: all, in input order
        self._finished: collections.deque[_Segment] = collections.deque()  # as-ready: the done ones
        self._unyielded = 0  # segments made and not yielded yet
        self._held = 0  # their items: bounds the driver's memory
        self._completions = _Completions()
        self._closed = False

    # ------------------------------------------------------------------ iteration

    def __iter__(self) -> Generator[Any, None, None]:
        try:
            while True:
                self._fill()
                for segment in self._ready_segments():
                    if segment.failures or self._options.ret_args:
                        yield from self._outputs(segment)
                    else:
                        yield from segment.values  # the common case: one generator level, at C speed
                if self._is_over():
                    return
                if not self._in_flight:
                    continue  # only replayed results were waiting: make room for more input
                future = self._completions.take(block=True)
                while future is not None:
                    self._complete(future)
                    future = self._completions.take(block=False)
        finally:
            self.close()

    async def __aiter__(self) -> AsyncGenerator[Any, None]:
        self._completions.bind(asyncio.get_running_loop())
        try:
            while True:
                await self._fill_async()
                for segment in self._ready_segments():
                    for output in self._outputs(segment):
                        yield output
                if self._is_over():
                    return
                if not self._in_flight:
                    continue
                future: concurrent.futures.Future[Any] | None = await self._completions.take_async()
                while future is not None:
                    self._complete(future)
                    future = self._completions.take(block=False)
        finally:
            self.close()

    def close(self) -> None:
        """Cancel the batches in flight and close the journal and the progress display."""
        if self._closed:
            return
        self._closed = True
        for future in list(self._in_flight):
            try:
                self._engine.cancel(future)
            except Exception:
                future.cancel()
        self._in_flight.clear()
        self._ordered.clear()
        self._finished.clear()
        if self._progress is not None:
            self._progress.close()
        if self._journal is not None:
            self._journal.close()

    def _is_over(self) -> bool:
        return self._exhausted and not self._in_flight and not self._ordered and not self._finished

    # ------------------------------------------------------------------ submitting

    def _room(self) -> bool:
        if self._exhausted:
            return False
        # Until a batch has been measured, one single-item batch per worker finds the pace.
        limit = self._max_pending if self._sizer.measured else self._workers
        return (
            len(self._in_flight) < limit
            and self._unyielded < self._max_pending + self._workers
            and self._held < MAX_ITEMS_HELD
        )

    def _fill(self) -> None:
        while self._room():
            self._submit_items(self._split_recorded(self._pull(self._sizer.next_size(self._remaining))))

    async def _fill_async(self) -> None:
        if not hasattr(self._items, "__anext__"):
            self._fill()
            return
        while self._room():
            size = self._sizer.next_size(self._remaining)
            batch: list[Any] = []
            while len(batch) < size:
                try:
                    batch.append(await self._items.__anext__())
                except StopAsyncIteration:
                    self._exhausted = True
                    break
            self._submit_items(self._split_recorded(batch))

    def _pull(self, count: int) -> Sequence[Any]:
        if self._range is not None:
            batch: Sequence[Any] = self._range[self._position : self._position + count]
            self._position += len(batch)
        else:
            batch = list(itertools.islice(self._items, count))
        if len(batch) < count:
            self._exhausted = True
        return batch

    def _split_recorded(self, batch: Sequence[Any]) -> list[Any]:
        """The batch as runs to submit (lists) and results replayed from the journal
        (``(arg, ok, value)`` tuples), in input order."""
        if self._remaining is not None:
            self._remaining = max(0, self._remaining - len(batch))
        if not self._recorded:
            return [batch] if batch else []
        from zoopipe_core.parallel.map.journal import item_key

        pieces: list[Any] = []
        run: list[Any] = []
        for arg in batch:
            entry = self._recorded.get(item_key(arg, self._key))
            if entry is None or not (entry[0] or self._replay_failures):
                run.append(arg)
                continue
            if run:
                pieces.append(run)
                run = []
            pieces.append((arg, entry[0], entry[1]))
        if run:
            pieces.append(run)
        return pieces

    def _submit_items(self, pieces: list[Any]) -> None:
        for piece in pieces:
            if isinstance(piece, tuple):  # replayed from the journal
                arg, ok, value = piece
                segment = _Segment([arg], [value if ok else None], {} if ok else {0: value}, done=True)
                self._add_segment(segment)
                self._segment_done(segment)
                if self._progress is not None:
                    self._progress.update(done=1, errors=0 if ok else 1)
                continue
            segment = _Segment(piece, [None] * len(piece), {})
            self._add_segment(segment)
            self._submit(_Part(segment, 0, len(piece), 0.0))

    def _add_segment(self, segment: _Segment) -> None:
        self._unyielded += 1
        self._held += len(segment.args)
        if self._options.keep_order:
            self._ordered.append(segment)

    def _submit(self, part: _Part) -> None:
        items = part.segment.args[part.offset : part.offset + part.length]
        if part.offset == 0 and part.length == len(part.segment.args):
            items = part.segment.args
        part.submitted_at = time.monotonic()
        part.segment.parts_pending += 1
        future = self._engine.submit(run_batch, self._job, items)
        self._in_flight[future] = part
        future.add_done_callback(self._completions.push)

    # ------------------------------------------------------------------ results

    def _complete(self, future: concurrent.futures.Future[Any]) -> None:
        part = self._in_flight.pop(future, None)
        if part is None or future.cancelled():
            return
        part.segment.parts_pending -= 1
        error = future.exception()
        if error is None:
            result: BatchResult = future.result()
            self._sizer.observe(part.length, result.seconds, time.monotonic() - part.submitted_at)
            values, failures = result.outputs()
            self._store(part, values, failures, result.frame)
        elif isinstance(error, WorkerLost):
            self._on_lost(part, error)
        else:
            # run_batch keeps every item's exception: this failure is the batch's own (its
            # result did not travel back, the shared job is gone); it concerns every item.
            raise RuntimeError(
                f"a batch of {part.length} item(s) of the parallel map failed on the engine "
                f"{self._engine!r} as a whole: {type(error).__name__}: {error}"
            ) from error

    def _on_lost(self, part: _Part, error: WorkerLost) -> None:
        if part.length > 1:  # which item killed the worker is not known: split and see
            half = part.length // 2
            self._submit(_Part(part.segment, part.offset, half, 0.0))
            self._submit(_Part(part.segment, part.offset + half, part.length - half, 0.0))
            return
        if part.attempt < self._retries and isinstance(error, self._retry_on):
            self._submit(_Part(part.segment, part.offset, 1, 0.0, part.attempt + 1))
            return
        failure = Failure.raised(error, error.worker)
        frame = self._driver_frame(part.segment.args[part.offset], failure)
        self._store(part, [None], {0: failure}, frame)

    def _driver_frame(self, arg: Any, failure: Failure) -> bytes | None:
        if self._journal is None:
            return None
        from zoopipe_core.parallel.map.journal import encode_batch

        return encode_batch([arg], [None], {0: failure}, self._key)

    def _store(
        self, part: _Part, values: list[Any], failures: dict[int, Failure], frame: bytes | None = None
    ) -> None:
        """Record a part's results, its journal frame (the worker's, or the one the driver made
        for a lost item) written first. Written here, on the loop that hands out values, not on
        the engine's thread that resolved the batch: a write there releases the GIL for the
        system call and then waits for this loop to yield it back (up to the 5 ms switch
        interval), which delays the batch's delivery on every write."""
        segment = part.segment
        if part.offset == 0 and part.length == len(segment.args):
            segment.values = values
        else:
            segment.values[part.offset : part.offset + part.length] = values
        for index, failure in failures.items():
            segment.failures[part.offset + index] = failure
        if frame is not None and self._journal is not None:
            self._journal.write(frame)
        if self._progress is not None:
            self._progress.update(done=part.length, errors=len(failures))
        if segment.parts_pending == 0:
            self._segment_done(segment)

    def _segment_done(self, segment: _Segment) -> None:
        segment.done = True
        if not self._options.keep_order:
            self._finished.append(segment)

    def _ready_segments(self) -> Iterator[_Segment]:
        """The segments whose results may be yielded now, each taken off the queue as it is
        handed out."""
        source = self._ordered if self._options.keep_order else self._finished
        while source and source[0].done:
            segment = source.popleft()
            self._unyielded -= 1
            self._held -= len(segment.args)
            yield segment

    def _outputs(self, segment: _Segment) -> Iterator[Any]:
        options = self._options
        if not segment.failures and not options.ret_args:
            yield from segment.values
            return
        failures = segment.failures
        for index, (arg, value) in enumerate(zip(segment.args, segment.values, strict=True)):
            failure = failures.get(index)
            if failure is not None:
                error = failure.exception()
                if not options.safe_exceptions:
                    raise error
                value = error
            yield (arg, value) if options.ret_args else value
