"""Parallel map of any Python function over any engine (issue 17).

``api`` holds :class:`ParallelMap`; ``worker`` runs one batch on a worker (per-item timeouts,
retries, failures as data); ``batching`` sizes batches from measured item times; ``scheduler``
is the driver loop (lazy input, bounded in-flight work, ordering, cancellation); ``journal``
is the checkpoint journal; ``progress`` the progress display.
"""

from __future__ import annotations

from zoopipe_core.engines import preload_on_workers
from zoopipe_core.parallel.map.api import ParallelMap

# Engines import it in the workers they ready, so a first map batch does not (about 10 ms).
preload_on_workers("zoopipe_core.parallel.map.worker")

__all__ = ["ParallelMap"]
