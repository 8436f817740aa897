"""What a PipeManager's run that did not complete leaves behind, and removing it: the temporary
files of its unfinished pipes, and the parts of shards that finished but were only to be merged.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from zoopipe_core.adapters.base import OutputAdapter
from zoopipe_core.adapters.merge import remove_output
from zoopipe_core.adapters.storage import leftover_temps, remove_stale_temps
from zoopipe_core.pipe.pipe import Pipe

#: Seconds a stopped run waits, beyond its stop timeout, for the stopped tasks to resolve and for
#: their temporary files to be gone (removed by the stopping task, or swept once its process is dead).
SETTLE_GRACE = 10.0


def remove_leftovers(unfinished: Sequence[Pipe], parts: Sequence[OutputAdapter], wait: float) -> None:
    """Remove the temporary files of the ``unfinished`` pipes' outputs, waiting up to ``wait``
    seconds for them to go, then the files of ``parts``.

    A stopped task removes its temporary file itself as it stops; the file of one killed
    forcefully is removed once its process is gone (so a stopped run waits for that). The
    ``parts`` are those of the shards of a stopped run that finished: they were only to be
    merged, and the next run writes them again.
    """
    outputs = [a for p in unfinished for a in (p.output_adapter, p.error_output_adapter)]
    paths = [path for path in (getattr(a, "path", None) for a in outputs) if isinstance(path, str)]
    deadline = time.monotonic() + wait
    while True:
        waiting = False
        for path in paths:
            remove_stale_temps(path)
            waiting = waiting or bool(leftover_temps(path))
        if not waiting or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    for part in parts:
        remove_output(part)
