"""Timing of the map alone, with the driver's RSS sampled around it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

#: How often the sampler reads the driver's RSS.
SAMPLE_EVERY_S = 0.02


class RssSampler:
    """Samples this process's RSS every 20 ms in a thread; ``growth_mib`` is the peak minus the
    RSS when it started (just before the map), so set-up and imports do not count."""

    def __init__(self) -> None:
        import psutil

        self._process = psutil.Process()
        self.baseline = self._process.memory_info().rss
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY_S):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)
        return (self.peak - self.baseline) / 2**20


def timed(body: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    """Run ``body`` (the map and the consumption of its results) and return its value with the
    wall seconds and the driver's RSS growth over it."""
    sampler = RssSampler()
    started = time.perf_counter()
    try:
        value = body()
    finally:
        seconds = time.perf_counter() - started
        growth = sampler.stop()
    return value, {"seconds": seconds, "rss_growth_mib": growth}
