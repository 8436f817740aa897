"""What stops a PipeManager's run when the driver goes away: an exit hook for runs still going
when Python exits, and a SIGTERM handler that turns the signal into a clean stop.

Either way the run's workers are stopped and its temporary and part files removed, which killing
the driver outright would leave behind.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
from typing import TYPE_CHECKING, Any

from zoopipe_core.running import RunningSet

if TYPE_CHECKING:
    from zoopipe_core.parallel.manager import PipeManager

_log = logging.getLogger("zoopipe")

#: Managers between start() and the end of their run, for the exit hook and the SIGTERM handler.
running_managers: RunningSet[PipeManager] = RunningSet()


@atexit.register
def _stop_managers_at_exit() -> None:
    """Runs still going when Python exits are stopped and cleaned up (no temporary or part files)
    before the engines' own exit hooks stop their workers."""
    for manager in running_managers.snapshot():
        _log.warning(
            "%r was still running when Python exited: stopped it, nothing was published "
            "or merged. Call manager.wait() before the program ends",
            manager,
        )
        manager.shutdown()


class Terminated(SystemExit):
    """SIGTERM to the driver while a manager runs: the run is stopped and cleaned up on the way
    out, and the process exits with status 143 (128 + SIGTERM).

    Example:
        >>> Terminated().code
        143
    """

    def __init__(self) -> None:
        super().__init__(128 + signal.SIGTERM)


def _on_sigterm(signum: int, frame: Any) -> None:
    if running_managers:  # read without the lock: a signal handler must not wait for it
        raise Terminated()
    # No run going on: die of SIGTERM, as Python does without a handler.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def handle_sigterm() -> None:
    """While a manager runs, SIGTERM to this process (the driver) stops the run cleanly instead
    of killing the process at once, which would leave its workers running and their files
    behind. Installed only on the main thread and only where Python would die of SIGTERM (the
    program set no handler); with no run going on, the handler dies of SIGTERM as before."""
    on_main_thread = threading.current_thread() is threading.main_thread()
    if on_main_thread and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)
