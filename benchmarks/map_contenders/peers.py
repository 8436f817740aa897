"""The peers, each used the way its documentation shows, at its best where it has a knob.

Every pool or cluster is started, and its workers warmed by a small map of the same function,
before the clock: the timed part is the map of the scenario's input and the consumption of its
results, as for ours.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from map_contenders import work
from map_contenders.common import FUNCTIONS, chunked, consume, start_ray
from map_contenders.measure import timed


def raymap(scenario: str, n: int, batch_size: int | None = None) -> dict[str, Any]:
    """ray-map 1.0.3: ``RayMap(fn)`` (its default batch_size=8) or ``RayMap(fn, batch_size=b)``,
    joining the local Ray started before it."""
    from ray_map import RayMap

    ray = start_ray()
    try:
        options = {} if batch_size is None else {"batch_size": batch_size}
        mapper = RayMap(FUNCTIONS[scenario], **options)
        list(mapper.imap(range(4)))  # ray-map prepares its remote function on first use
        extra, measured = timed(lambda: consume(scenario, mapper.imap, n))
    finally:
        ray.shutdown()
    return {**measured, **extra}


def ray_tasks(scenario: str, n: int, chunk: int) -> dict[str, Any]:
    """Plain Ray: one ``@ray.remote`` task per list of ``chunk`` items, all submitted, results
    fetched in order."""
    ray = start_ray()
    try:
        batch_task = ray.remote(work.square_batch)

        def imap(iterable: Iterable[int]) -> Iterator[int]:
            refs = [batch_task.remote(batch) for batch in chunked(iterable, chunk)]
            for ref in refs:
                yield from ray.get(ref)

        extra, measured = timed(lambda: consume(scenario, imap, n))
    finally:
        ray.shutdown()
    return {**measured, **extra}


def ray_actor_pool(scenario: str, n: int, chunk: int) -> dict[str, Any]:
    """``ray.util.ActorPool`` of 2 actors, ``pool.map`` over lists of ``chunk`` items."""
    ray = start_ray()
    try:
        from ray.util import ActorPool

        actor = ray.remote(work.Squarer)
        actors = [actor.remote() for _ in range(2)]
        ray.get([a.run.remote([1]) for a in actors])
        pool = ActorPool(actors)

        def imap(iterable: Iterable[int]) -> Iterator[int]:
            for batch in pool.map(lambda a, v: a.run.remote(v), list(chunked(iterable, chunk))):
                yield from batch

        extra, measured = timed(lambda: consume(scenario, imap, n))
    finally:
        ray.shutdown()
    return {**measured, **extra}


def pool_imap(scenario: str, n: int, chunksize: int) -> dict[str, Any]:
    """``multiprocessing.Pool(2).imap(fn, iterable, chunksize=...)`` (fork, Linux's default)."""
    import multiprocessing

    fn = FUNCTIONS[scenario]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        pool.map(fn, range(2))
        extra, measured = timed(
            lambda: consume(scenario, lambda it: pool.imap(fn, it, chunksize=chunksize), n)
        )
    return {**measured, **extra}


def mpire_imap(scenario: str, n: int) -> dict[str, Any]:
    """``mpire.WorkerPool(n_jobs=2).imap(fn, iterable)`` with its default chunking; the workers
    are kept alive from a warm-up map, so their start is not timed."""
    from mpire import WorkerPool

    fn = FUNCTIONS[scenario]
    with WorkerPool(n_jobs=2, keep_alive=True) as pool:
        pool.map(fn, range(2))
        extra, measured = timed(lambda: consume(scenario, lambda it: pool.imap(fn, it), n))
    return {**measured, **extra}


def joblib_loky(scenario: str, n: int) -> dict[str, Any]:
    """joblib ``Parallel(n_jobs=2, backend="loky")(delayed(fn)(x) for x in ...)``, batch_size
    "auto"; loky's reusable executor is started by a warm-up call."""
    from joblib import Parallel, delayed

    fn = FUNCTIONS[scenario]
    Parallel(n_jobs=2, backend="loky")(delayed(fn)(x) for x in range(2))

    def imap(iterable: Iterable[int]) -> Iterator[int]:
        return iter(Parallel(n_jobs=2, backend="loky")(delayed(fn)(x) for x in iterable))

    extra, measured = timed(lambda: consume(scenario, imap, n))
    return {**measured, **extra}


def dask_client_map(scenario: str, n: int, chunk: int, pickled: bool = False) -> dict[str, Any]:
    """Dask ``client.map(batch_fn, batches, pure=False)`` on a LocalCluster(n_workers=2,
    threads_per_worker=1, processes=True), results fetched in order. ``pickled``: each task
    returns its list pickled into one bytes object, which Dask moves far faster than the list."""
    import pickle

    from dask.distributed import Client, LocalCluster

    batch_fn = work.square_batch_pickled if pickled else work.square_batch

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        client.wait_for_workers(2)
        client.gather(client.map(batch_fn, [[1], [2]], pure=False))

        def imap(iterable: Iterable[int]) -> Iterator[int]:
            futures = client.map(batch_fn, list(chunked(iterable, chunk)), pure=False)
            for future in futures:
                yield from pickle.loads(future.result()) if pickled else future.result()

        extra, measured = timed(lambda: consume(scenario, imap, n))
    return {**measured, **extra}
