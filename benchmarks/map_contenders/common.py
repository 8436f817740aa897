"""What every contender does with its map: the scenario's input, the consumption of the results
and their check. A contender supplies only ``imap(iterable, **options)`` bound to the scenario's
function (:data:`FUNCTIONS`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from map_contenders import work

#: The function each scenario maps.
FUNCTIONS: dict[str, Callable[[int], int]] = {
    "trivial": work.square,
    "checkpoint": work.square,
    "memory": work.square,
    "sleep": work.nap,
    "faults": work.faulty,
}

Imap = Callable[..., Iterator[Any]]


def consume(scenario: str, imap: Imap, n: int) -> dict[str, Any]:
    """Map ``n`` items through ``imap`` as the scenario says, check every result, and return
    what the run should report beside its time. Raises AssertionError on a wrong result."""
    if scenario in ("trivial", "checkpoint"):
        total = 0
        for y in imap(range(n)):
            total += y
        work.check_total(scenario, total, n)
        return {"items": n}
    if scenario == "memory":
        # A generator: the input has no length and must be consumed lazily; results are dropped.
        count = total = 0
        for y in imap(x for x in range(n)):
            count += 1
            total += y
        if count != n:
            raise AssertionError(f"memory: {count} results for {n} items")
        work.check_total(scenario, total, n)
        return {"items": n}
    if scenario == "sleep":
        results = list(imap(range(n)))
        if results != list(range(n)):
            raise AssertionError(f"sleep: the {len(results)} results are not the {n} inputs in order")
        return {"items": n}
    if scenario == "faults":
        results = list(imap(range(work.FAULT_ITEMS), timeout=work.FAULT_TIMEOUT_S, safe_exceptions=True))
        return {"items": work.FAULT_ITEMS, **work.check_faults(results)}
    raise ValueError(f"unknown scenario {scenario!r}")


def start_ray() -> Any:
    """The local Ray every Ray contender joins (2 CPUs, no dashboard), with its workers warmed
    by two no-op tasks, all before the clock starts."""
    import logging

    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR)
    noop = ray.remote(work.square)
    ray.get([noop.remote(i) for i in range(2)])
    return ray


def chunked(iterable: Iterable[int], size: int) -> Iterator[list[int]]:
    """Lists of ``size`` items from any iterable, as a user feeding batches by hand would."""
    batch: list[int] = []
    for x in iterable:
        batch.append(x)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
