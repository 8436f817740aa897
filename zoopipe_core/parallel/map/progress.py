"""The progress display of a parallel map: a tqdm bar on a terminal, periodic log lines elsewhere.

On a terminal the bar shows done/total (when the input has a length), the rate, the errors and
the ETA. Elsewhere (a log file, CI, a notebook's captured stderr) a bar would be a stream of
carriage returns, so a log line is written at most every ``interval`` seconds, and a last one at
the end. The driver calls :meth:`MapProgress.update` once per batch, so the cost per item is nil.

>>> import io, logging, sys
>>> logger = logging.getLogger("doctest.progress")
>>> logger.addHandler(logging.StreamHandler(sys.stdout)); logger.setLevel(logging.INFO)
>>> logger.propagate = False
>>> with MapProgress("square", 4, stream=io.StringIO(), interval=3600, logger=logger) as progress:
...     progress.update(done=3, errors=1)
...     progress.update(done=1)  # doctest: +ELLIPSIS
square: 4/4 items (100%), 1 errors, ... items/s, took 0s
"""

from __future__ import annotations

import importlib
import logging
import sys
import time
from typing import Any, TextIO

_LOGGER_NAME = "zoopipe_core.map"


def _duration(seconds: float) -> str:
    """``9s``, ``2m05s``, ``1h02m``: short enough for a log line."""
    s = int(seconds + 0.5)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


class MapProgress:
    """Progress of a map of ``total`` items (``None`` when the input has no length) named ``name``.

    ``stream`` (default ``sys.stderr``) decides the form: on a terminal a tqdm bar, elsewhere
    log lines on ``logger`` (default ``zoopipe_core.map``, level INFO) at most every ``interval``
    seconds, like ``square: 1200/5000 items (24%), 35 errors, 410 items/s, ETA 9s``, and a last
    one at :meth:`close` with the time taken in place of the ETA. ``enabled=False`` makes every
    method a no-op (tqdm is not even imported).

    >>> progress = MapProgress("square", None, enabled=False)
    >>> progress.update(done=10)
    >>> progress.close()
    >>> progress.done
    0
    """

    def __init__(
        self,
        name: str,
        total: int | None,
        *,
        enabled: bool = True,
        stream: TextIO | None = None,
        interval: float = 10.0,
        logger: logging.Logger | None = None,
    ) -> None:
        self.name = name
        self.total = total
        self.done = 0
        self.errors = 0
        self._enabled = enabled
        self._closed = not enabled
        self._interval = interval
        self._logger = logger or logging.getLogger(_LOGGER_NAME)
        self._start = self._last_line = time.monotonic()
        self._bar: Any = None
        if not enabled:
            return
        stream = stream if stream is not None else sys.stderr
        if _is_terminal(stream):
            # Imported here: a run without a terminal bar does not pay for importing tqdm.
            tqdm = importlib.import_module("tqdm").tqdm
            self._bar = tqdm(total=total, desc=name, unit="item", file=stream, dynamic_ncols=True)
            self._bar.set_postfix_str("errors=0", refresh=False)

    def update(self, done: int = 0, errors: int = 0) -> None:
        """Count ``done`` more items finished, ``errors`` of them failed."""
        if self._closed:
            return
        self.done += done
        if errors:
            self.errors += errors
            if self._bar is not None:
                self._bar.set_postfix_str(f"errors={self.errors}", refresh=False)
        if self._bar is not None:
            self._bar.update(done)
            return
        now = time.monotonic()
        if now - self._last_line >= self._interval:
            self._last_line = now
            self._logger.info("%s", self.line(now))

    def line(self, now: float | None = None, *, final: bool = False) -> str:
        """The log line of the progress so far: counts, errors, rate, and the ETA (or, ``final``,
        the time taken).

        >>> MapProgress("f", 10, enabled=False).line()
        'f: 0/10 items (0%), 0 errors, 0 items/s, ETA ?'
        """
        elapsed = (time.monotonic() if now is None else now) - self._start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        parts = [f"{self.done} items"]
        if self.total is not None:
            percent = 100 * self.done // self.total if self.total else 100
            parts = [f"{self.done}/{self.total} items ({percent}%)"]
        parts.append(f"{self.errors} errors")
        parts.append(f"{rate:.1f} items/s" if 0 < rate < 10 else f"{rate:.0f} items/s")
        if final:
            parts.append(f"took {_duration(elapsed)}")
        elif self.total is not None:
            remaining = max(self.total - self.done, 0)
            parts.append(f"ETA {_duration(remaining / rate)}" if rate > 0 else "ETA ?")
        return f"{self.name}: {', '.join(parts)}"

    def close(self) -> None:
        """Finish the display: close the bar, or write the last log line. Closing again does nothing."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        else:
            self._logger.info("%s", self.line(final=True))

    def __enter__(self) -> MapProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
