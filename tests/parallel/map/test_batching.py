"""BatchSizer: batch sizes follow the measured time per item and per batch."""

from __future__ import annotations

from zoopipe_core.parallel.map.batching import MAX_BATCH, BatchSizer


def test_a_big_batch_outweighs_the_cold_single_item_probe():
    """The first single-item batch pays for cold caches (here 15 us for a 0.1 us item): the
    next batch of thousands of items sets the pace at once, not after a slow drift."""
    sizer = BatchSizer(fixed=None, workers=2)
    sizer.observe(items=1, worker_seconds=15e-6, round_trip=0.005)
    probe_size = sizer.next_size(remaining=None)
    sizer.observe(items=probe_size, worker_seconds=probe_size * 1e-7, round_trip=0.004)
    assert sizer.next_size(remaining=None) == MAX_BATCH


def test_the_time_per_item_follows_an_input_that_gets_slower():
    sizer = BatchSizer(fixed=None, workers=2)
    for _ in range(3):
        sizer.observe(items=100, worker_seconds=0.1, round_trip=0.11)  # 1 ms items
    fast = sizer.next_size(remaining=None)
    for _ in range(3):
        sizer.observe(items=100, worker_seconds=1.0, round_trip=1.01)  # now 10 ms items
    assert sizer.next_size(remaining=None) < fast / 5
