"""How many items go into each batch of a parallel map.

A fixed ``batch_size`` is used as given. With ``batch_size=None`` the size follows what the run
measures: the seconds an item takes on a worker, and the engine's overhead per batch (the
shortest round trip minus the worker's own time: the least a batch costs beyond its items; the
first batch's is not trusted alone, as it also pays one-time costs such as a worker starting).
Each batch then lasts long enough that the overhead stays a few percent of it, and no longer
than needed (results keep streaming, a checkpoint loses little). The first batches, before any
measurement, hold one item each, so a slow function is found out at once. Near the end of an
input of known length, batches shrink to about half of the remaining items per worker, so every
core stays busy until the last item, as long as that keeps the overhead small.
"""

from __future__ import annotations

import math

#: Most items in one batch (the scheduler also bounds the items the driver holds in all).
MAX_BATCH = 32768

#: A batch lasts this many times the engine's overhead per batch (overhead about 2%) when the
#: input's length is known, so the tail can shrink; else 20 times (5%), as the end comes unseen.
OVERHEAD_FACTOR = 50.0
OVERHEAD_FACTOR_UNKNOWN_LENGTH = 20.0

#: The tail's batches shrink down to this many times the overhead (overhead about 20% for those
#: few batches, which beats a core waiting idle for the last long one).
TAIL_FACTOR = 5.0

#: How much an earlier batch's measure of the time per item counts at each new batch.
ITEM_TIME_DECAY = 0.5

#: Seconds a batch aims for when the overhead alone would allow shorter ones.
TARGET_SECONDS = 0.1


class BatchSizer:
    """Chooses the size of the next batch from the measured time per item and per batch.

    Example:
        >>> sizer = BatchSizer(fixed=None, workers=2)
        >>> sizer.next_size(remaining=None), sizer.measured
        (1, False)
        >>> sizer.observe(items=1, worker_seconds=0.005, round_trip=1.005)  # a cold worker: 1 s
        >>> sizer.next_size(remaining=None)  # the first overhead is not trusted: 0.1 s of 5 ms items
        20
        >>> sizer.observe(items=20, worker_seconds=0.1, round_trip=0.11)  # 10 ms overhead
        >>> sizer.next_size(remaining=None)  # 20 x 10 ms of 5 ms items
        40
        >>> sizer.next_size(remaining=10_000)  # 50 x 10 ms
        100
        >>> sizer.next_size(remaining=60), sizer.next_size(remaining=8)  # the tail shrinks, to 5 x 10 ms
        (15, 10)
        >>> BatchSizer(fixed=8, workers=2).next_size(remaining=3)
        8
    """

    def __init__(self, fixed: int | None, workers: int) -> None:
        self._fixed = fixed
        self._workers = max(1, workers)
        self._item_seconds: float | None = None
        self._seconds_seen = 0.0
        self._items_seen = 0.0
        self._overhead: float | None = None  # the least a batch cost beyond its items
        self._observed = 0
        self._first_overhead = 0.0

    @property
    def measured(self) -> bool:
        """True once a batch has come back, so sizes rest on measurements."""
        return self._fixed is not None or self._item_seconds is not None

    def observe(self, items: int, worker_seconds: float, round_trip: float) -> None:
        """Learn from one finished batch: its item count, the seconds its items took on the
        worker, and the seconds from its submission to its result on the driver."""
        if self._fixed is not None or items <= 0:
            return
        # Seconds per item over the batches seen, each earlier batch weighing half as much at
        # every new one (items may get slower or faster as the input goes on), and each batch
        # by its items: a big batch's measure outweighs the first single-item batch's, which
        # also paid for cold caches.
        self._seconds_seen = ITEM_TIME_DECAY * self._seconds_seen + max(worker_seconds, 0.0)
        self._items_seen = ITEM_TIME_DECAY * self._items_seen + items
        self._item_seconds = max(self._seconds_seen / self._items_seen, 1e-8)
        overhead = max(round_trip - worker_seconds, 1e-4)
        self._observed += 1
        if self._observed == 1:
            # The first batch also paid one-time costs (a worker process starting, imports, the
            # shared function's first load): its overhead only counts once another agrees.
            self._first_overhead = overhead
            return
        if self._overhead is None:
            self._overhead = min(overhead, self._first_overhead)
        else:
            self._overhead = min(self._overhead, overhead)

    def next_size(self, remaining: int | None) -> int:
        """The size of the next batch; ``remaining`` is how many items are left to submit, when
        the input's length is known."""
        if self._fixed is not None:
            return self._fixed
        if self._item_seconds is None:
            return 1
        item, overhead = self._item_seconds, self._overhead or 0.0
        factor = OVERHEAD_FACTOR_UNKNOWN_LENGTH if remaining is None else OVERHEAD_FACTOR
        size = math.ceil(max(factor * overhead, TARGET_SECONDS) / item)
        if remaining is not None:
            tail = max(math.ceil(TAIL_FACTOR * overhead / item), math.ceil(remaining / (2 * self._workers)))
            size = min(size, tail)
        return max(1, min(size, MAX_BATCH))
