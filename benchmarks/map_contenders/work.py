"""The mapped functions and the checks of their results, shared by every contender.

Module-level functions, so every engine ships them by reference: the parent puts ``benchmarks/``
on ``PYTHONPATH``, which the Ray and Dask worker processes inherit.
"""

from __future__ import annotations

import pickle
import time

#: The sleep scenario: each item sleeps this long.
SLEEP_S = 0.005
#: The faults scenario: 200 items; these raise, these hang, the rest sleep FAULT_ITEM_S.
FAULT_ITEMS = 200
FAULT_RAISE = frozenset(range(7, FAULT_ITEMS, 20))  # 10 items
FAULT_HANG = frozenset(range(13, FAULT_ITEMS, 40))  # 5 items
FAULT_ITEM_S = 0.01
FAULT_HANG_S = 10.0
FAULT_TIMEOUT_S = 1.0


def square(x: int) -> int:
    return x * x


def square_batch(xs: list[int]) -> list[int]:
    """One task's worth of squares, for the peers that batch by hand: the mapped function
    called per item, as every other contender calls it (inlining ``x * x`` would compare
    a different, cheaper loop)."""
    return [square(x) for x in xs]


def square_batch_pickled(xs: list[int]) -> bytes:
    """The batch's squares as one pickle: Dask moves a returned list of ints element by element
    (about 0.5 s per 10,000 here), bytes in one piece."""
    return pickle.dumps(square_batch(xs), protocol=pickle.HIGHEST_PROTOCOL)


class Squarer:
    """The actor of the ActorPool contender."""

    def run(self, xs: list[int]) -> list[int]:
        return square_batch(xs)


def nap(x: int) -> int:
    time.sleep(SLEEP_S)
    return x


def faulty(x: int) -> int:
    if x in FAULT_RAISE:
        raise ValueError(f"item {x} fails on purpose")
    time.sleep(FAULT_HANG_S if x in FAULT_HANG else FAULT_ITEM_S)
    return x


def sum_of_squares(n: int) -> int:
    """sum(x*x for x in range(n)), the checksum of the trivial and memory scenarios."""
    return (n - 1) * n * (2 * n - 1) // 6


def chunks(n: int, size: int) -> list[list[int]]:
    """range(n) as lists of ``size`` items: how a user batches an arbitrary iterable by hand."""
    items = range(n)
    return [list(items[start : start + size]) for start in range(0, n, size)]


def check_total(what: str, total: int, n: int) -> None:
    expected = sum_of_squares(n)
    if total != expected:
        raise AssertionError(f"{what}: the results sum to {total}, expected {expected} for {n} items")


def check_faults(results: list[object]) -> dict[str, int]:
    """Every one of the 200 items accounted for, in input order: its value, its ValueError, or a
    TimeoutError for the hung ones. Returns the counts."""
    if len(results) != FAULT_ITEMS:
        raise AssertionError(f"faults: {len(results)} results for {FAULT_ITEMS} items")
    counts = {"values": 0, "value_errors": 0, "timeouts": 0}
    for x, result in enumerate(results):
        if x in FAULT_RAISE:
            if not isinstance(result, ValueError):
                raise AssertionError(f"faults: item {x} should be a ValueError, got {result!r}")
            counts["value_errors"] += 1
        elif x in FAULT_HANG:
            if not isinstance(result, TimeoutError):
                raise AssertionError(f"faults: item {x} should be a TimeoutError, got {result!r}")
            counts["timeouts"] += 1
        else:
            if result != x:
                raise AssertionError(f"faults: item {x} should be {x}, got {result!r}")
            counts["values"] += 1
    return counts
