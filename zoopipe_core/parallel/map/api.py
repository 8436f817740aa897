"""ParallelMap: ``imap``/``map`` of any Python function over any engine.

The API is ray-map's (``RayMap``), which users arrive with, on every engine: local processes,
Ray and Dask. Where the work goes: the driver pulls items from the input as it submits batches;
each batch is one engine task running :func:`~zoopipe_core.parallel.map.worker.run_batch`; the
function travels once per worker, not once per batch (by name when it is an importable
function, else through ``Engine.share``: see ``ParallelMap._ship``). See docs/map.md.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import types
from collections.abc import AsyncGenerator, Callable, Generator, Iterable
from typing import Any

from zoopipe_core.engines import Engine, SharedRef, callable_name
from zoopipe_core.parallel.map.scheduler import MapOptions, MapRun
from zoopipe_core.parallel.map.worker import MapJob


class ParallelMap:
    """Map a function over items in parallel on an engine, with bounded memory, per-item
    timeouts, retries, failures as data and a checkpoint to resume from.

    - ``engine``: an :class:`~zoopipe_core.engines.Engine`, a registered name (``"multiprocess"``,
      ``"ray"``, ``"dask"``) or None for the default (local processes). An engine made here from
      a name or None is started on first use and shut down by :meth:`close` (or at exit); an
      engine passed in is left running.
    - ``batch_size``: items per engine task; None adapts it to the measured time per item, so
      the engine's overhead per task stays small and the last batches keep every core busy.
    - ``max_pending``: most batches in flight at once; -1 is four times what the engine runs at
      once (batches queue on the engine, so a worker never waits for the driver).
    - ``checkpoint_path``: a journal of completed items; a run interrupted and started again
      yields the recorded results and computes only the rest (``key`` names an item in it:
      ``key(arg)``; by default a stable digest of the argument).
    - ``retries`` / ``retry_on``: retry an item whose exception is one of ``retry_on``, with
      exponential backoff from ``backoff`` seconds; a lost worker's item counts as WorkerLost.
    - ``progress``: a progress bar on a terminal, periodic log lines elsewhere.

    An item that is a tuple is spread as positional arguments, a dict as keyword arguments.

    Example:
        >>> from zoopipe_core import ParallelMap
        >>> def square(x):
        ...     return x * x
        >>> with ParallelMap(square, engine="multiprocess") as pm:
        ...     pm.map(range(5))
        ...     list(pm.imap([(2,), {"x": 3}], ret_args=True))
        [0, 1, 4, 9, 16]
        [((2,), 4), ({'x': 3}, 9)]
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        engine: Engine | str | None = None,
        batch_size: int | None = None,
        max_pending: int = -1,
        checkpoint_path: str | os.PathLike[str] | None = None,
        retries: int = 0,
        retry_on: type[BaseException] | tuple[type[BaseException], ...] = (Exception,),
        key: Callable[[Any], Any] | None = None,
        progress: bool = False,
        *,
        backoff: float = 0.1,
        replay_failures: bool = False,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"ParallelMap needs a callable, got {type(fn).__name__} {fn!r}")
        if batch_size is not None and (not _is_int(batch_size) or batch_size < 1):
            raise ValueError(f"batch_size must be None (adaptive) or an int >= 1, got {batch_size!r}")
        if not _is_int(max_pending) or (max_pending < 1 and max_pending != -1):
            raise ValueError(
                f"max_pending must be -1 (four times the engine's parallelism) or an int >= 1, got {max_pending!r}"
            )
        if not _is_int(retries) or retries < 0:
            raise ValueError(f"retries must be an int >= 0, got {retries!r}")
        if isinstance(retry_on, type):
            retry_on = (retry_on,)
        if not all(isinstance(t, type) and issubclass(t, BaseException) for t in retry_on):
            raise TypeError(f"retry_on must be an exception class or a tuple of them, got {retry_on!r}")
        if key is not None and not callable(key):
            raise TypeError(f"key must be None or a callable of one argument, got {key!r}")
        if backoff < 0:
            raise ValueError(f"backoff must be >= 0 seconds, got {backoff!r}")
        self.fn = fn
        self.batch_size = batch_size
        self.max_pending = max_pending
        self.checkpoint_path = None if checkpoint_path is None else os.fspath(checkpoint_path)
        self.retries = retries
        self.retry_on = tuple(retry_on)
        self.key = key
        self.progress = progress
        self.backoff = backoff
        self.replay_failures = replay_failures
        self._engine_spec = engine
        self._engine: Engine | None = engine if isinstance(engine, Engine) else None
        self._owns_engine = not isinstance(engine, Engine)
        # (timeout, journal) -> (engine, its run, the shared job): shared once per engine run.
        self._shipped: dict[tuple[float | None, bool], tuple[Engine, int, MapJob | SharedRef]] = {}
        # Taken here, not inside the first run (see journal_identity).
        self._journal_identity = journal_identity(fn) if checkpoint_path is not None else None

    def __repr__(self) -> str:
        return f"<ParallelMap {callable_name(self.fn)} engine={self._engine or self._engine_spec!r}>"

    # ------------------------------------------------------------------ the engine

    @property
    def engine(self) -> Engine:
        """The engine the map runs on (made from the name given, on first use)."""
        if self._engine is None:
            from zoopipe_core.plugins import resolve_engine

            self._engine = resolve_engine(self._engine_spec)
        return self._engine

    def close(self) -> None:
        """Shut down the engine this map made (from a name or None); an engine passed in is
        left running."""
        if self._owns_engine and self._engine is not None:
            self._engine.shutdown()

    def __enter__(self) -> ParallelMap:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ mapping

    def imap(
        self,
        iterable: Iterable[Any],
        *,
        timeout: float | None = None,
        safe_exceptions: bool = False,
        keep_order: bool = True,
        ret_args: bool = False,
    ) -> Generator[Any, None, None]:
        """Results as they may be yielded: in input order (``keep_order=True``) or as they
        complete; ``(arg, result)`` pairs with ``ret_args=True``.

        The input is consumed only as work is submitted (an infinite generator works) and a
        result is not kept once yielded. ``timeout``: seconds an item may run, from its start;
        an item over it gets a TimeoutError and the rest go on. ``safe_exceptions=True``: a
        failed item yields its exception (of the original type, with the remote traceback as
        ``__cause__``); False: it is raised at that item and the work in flight is cancelled.
        Leaving the loop early cancels the work in flight too.
        """
        return self._run(iterable, _options(timeout, safe_exceptions, keep_order, ret_args)).__iter__()

    def map(
        self,
        iterable: Iterable[Any],
        *,
        timeout: float | None = None,
        safe_exceptions: bool = False,
        keep_order: bool = True,
        ret_args: bool = False,
    ) -> list[Any]:
        """:meth:`imap` as a list."""
        return list(
            self.imap(
                iterable,
                timeout=timeout,
                safe_exceptions=safe_exceptions,
                keep_order=keep_order,
                ret_args=ret_args,
            )
        )

    def imap_async(
        self,
        iterable: Iterable[Any] | Any,
        *,
        timeout: float | None = None,
        safe_exceptions: bool = False,
        keep_order: bool = True,
        ret_args: bool = False,
    ) -> AsyncGenerator[Any, None]:
        """:meth:`imap` as an async iterator (``async for``); the input may be an async
        iterable too. Closing the iterator (``aclose()``, leaving the loop) cancels the work
        in flight.

        Example:
            >>> import asyncio
            >>> async def main():
            ...     with ParallelMap(abs, engine="multiprocess") as pm:
            ...         return [y async for y in pm.imap_async([-1, -2, 3])]
            >>> asyncio.run(main())
            [1, 2, 3]
        """
        run = self._run(iterable, _options(timeout, safe_exceptions, keep_order, ret_args))
        return run.__aiter__()

    async def map_async(
        self,
        iterable: Iterable[Any] | Any,
        *,
        timeout: float | None = None,
        safe_exceptions: bool = False,
        keep_order: bool = True,
        ret_args: bool = False,
    ) -> list[Any]:
        """:meth:`imap_async` as an awaitable list."""
        iterator = self.imap_async(
            iterable,
            timeout=timeout,
            safe_exceptions=safe_exceptions,
            keep_order=keep_order,
            ret_args=ret_args,
        )
        return [result async for result in iterator]

    # ------------------------------------------------------------------ one run

    def _run(self, iterable: Any, options: MapOptions) -> MapRun:
        if hasattr(iterable, "__aiter__"):
            items: Any = iterable.__aiter__()
        elif isinstance(iterable, range):
            items = iterable  # batches go as range slices: a few bytes each, not a list of ints
        else:
            items = iter(iterable)
        total = len(iterable) if hasattr(iterable, "__len__") else None
        engine = self._ready_engine()
        workers = engine.capacity()
        max_pending = 4 * workers if self.max_pending == -1 else self.max_pending
        journal, recorded = self._open_journal()
        job = MapJob(
            self.fn,
            timeout=options.timeout,
            retries=self.retries,
            retry_on=self.retry_on,
            backoff=self.backoff,
            journal=journal is not None,
            key=self.key,
        )
        progress = None
        if self.progress:
            from zoopipe_core.parallel.map.progress import MapProgress

            progress = MapProgress(callable_name(self.fn), total)
        return MapRun(
            engine,
            self._ship(engine, job),
            items,
            options,
            workers=workers,
            max_pending=max_pending,
            batch_size=self.batch_size,
            total=total,
            retries=self.retries,
            retry_on=self.retry_on,
            recorded=recorded,
            replay_failures=self.replay_failures,
            key=self.key,
            journal=journal,
            progress=progress,
        )

    def _ready_engine(self) -> Engine:
        """The engine, started when this map made it; a subclass may start it its own way
        (RayMap joins or starts Ray here, on the first call)."""
        engine = self.engine
        if self._owns_engine and not engine.is_running:
            engine.start()
        return engine

    def _open_journal(self) -> tuple[Any, dict[str, tuple[bool, Any]]]:
        if self.checkpoint_path is None:
            return None, {}
        from zoopipe_core.parallel.map.journal import Journal

        # A checkpoint_path set after construction has no identity yet.
        identity = self._journal_identity or journal_identity(self.fn)
        journal = Journal.open(self.checkpoint_path, *identity)
        return journal, journal.recorded

    def _ship(self, engine: Engine, job: MapJob) -> MapJob | SharedRef:
        """How the job travels to the workers: in every batch when its callables are plain
        functions pickled by reference (a module and a name: nothing to ship), else shared with
        the engine's workers once per engine run (and kept for the next calls with the same
        options); the job itself when the engine cannot share it (a lambda on local processes,
        whose forked workers inherit it anyway).

        Sharing a job that is only names would cost a put (a scatter to every worker on Dask)
        per map, a reference per task and a fetch per worker, for nothing.
        """
        options = (job.timeout, job.journal)
        kept = self._shipped.get(options)
        if kept is not None and kept[0] is engine and kept[1] == engine.run_count and engine.is_running:
            return kept[2]
        shipped: MapJob | SharedRef = job
        if not _by_reference(job):
            with contextlib.suppress(TypeError):  # the engine cannot share it: send the job
                shipped = engine.share(job)
        self._shipped[options] = (engine, engine.run_count, shipped)
        return shipped


def _options(timeout: float | None, safe_exceptions: bool, keep_order: bool, ret_args: bool) -> MapOptions:
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0
    ):
        raise ValueError(f"timeout must be None or a number of seconds > 0, got {timeout!r}")
    return MapOptions(
        timeout=None if timeout is None else float(timeout),
        safe_exceptions=safe_exceptions,
        keep_order=keep_order,
        ret_args=ret_args,
    )


def _by_reference(job: MapJob) -> bool:
    """True when the job's callables are functions the standard pickler stores by reference
    (importable module-level functions, builtins and classes), so the pickled job is a few names.

    Example:
        >>> _by_reference(MapJob(abs)), _by_reference(MapJob(lambda x: x))
        (True, False)
    """
    callables = [job.fn] if job.key is None else [job.fn, job.key]
    if not all(isinstance(fn, (types.FunctionType, types.BuiltinFunctionType, type)) for fn in callables):
        return False  # a callable object may hold anything (a model): ship it once per worker
    if any(fn.__module__ == "__main__" for fn in callables):
        return False  # a cluster's workers have another __main__: cloudpickle sends it by value
    try:
        pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # a lambda or a closure: not importable by name
        return False
    return True


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def journal_identity(fn: Callable[..., Any]) -> tuple[str, str]:
    """``fn``'s fingerprint and label for a journal header. It loads the journal module and
    hashes the function's code (~4 ms in a fresh process), so a map takes it when built.

    Example:
        >>> journal_identity(abs)[1]
        'builtins.abs'
    """
    from zoopipe_core.parallel.map.journal import function_fingerprint, function_label

    return function_fingerprint(fn), function_label(fn)
