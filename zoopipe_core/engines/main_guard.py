"""The ``if __name__ == "__main__":`` trap, caught before it costs anything.

Worker processes started with the ``spawn`` or ``forkserver`` method (Dask's LocalCluster,
MultiProcessEngine off Linux or with ``mp_context="spawn"``) begin by importing the driver's
main script again. A script that starts an engine at its top level, outside the guard, would
start it again in every worker while that worker is still starting: the worker dies, and the
driver sees an obscure error long after ("Nanny failed to start", a lost worker).

Two checks, one per side, raise :class:`UnguardedMainError` at once with what to do instead:

- in the driver, :func:`refuse_unguarded_main` (called by an engine before it starts such
  processes) finds the top-level line of the main script that is starting the engine and
  whether it lies inside an ``if __name__ == "__main__":`` block;
- in a worker, :func:`refuse_start_while_importing_main` (called by every ``Engine.start``)
  refuses to start an engine while the process is still importing the main script, so a case
  the driver could not see fails on its first line rather than on a timeout.
"""

from __future__ import annotations

import ast
import inspect
import linecache
import multiprocessing
import os
import sys
from types import FrameType

from zoopipe_core.errors import ZoopipeError

GUARD = '`if __name__ == "__main__":`'


class UnguardedMainError(ZoopipeError, RuntimeError):
    """An engine would start worker processes from the unguarded top level of the main script.

    Example:
        >>> error = UnguardedMainError("DaskEngine would start a LocalCluster ...")
        >>> isinstance(error, RuntimeError)
        True
    """


def importing_main_in_worker() -> bool:
    """True while this process is a multiprocessing worker still importing the main script.

    Example:
        >>> importing_main_in_worker()
        False
    """
    return bool(getattr(multiprocessing.current_process(), "_inheriting", False))


def refuse_start_while_importing_main(engine: str) -> None:
    """Raise UnguardedMainError when called while this worker process is importing the main
    script again (``spawn``/``forkserver``): the script starts ``engine`` outside the guard."""
    if not importing_main_in_worker():
        return
    script = _main_script() or "the main script"
    raise UnguardedMainError(
        f"{engine} was started while this worker process (pid {os.getpid()}) was importing "
        f"{script} again, as worker processes started with 'spawn' or 'forkserver' do: the "
        f"script starts the engine at its top level. Put the code that runs the pipes under "
        f"{GUARD} so that workers importing the script do not run it"
    )


def refuse_unguarded_main(engine: str, start_method: str, instead: str) -> None:
    """Raise UnguardedMainError when the main script starts ``engine`` from its top level
    outside an ``if __name__ == "__main__":`` block, and workers started with
    ``start_method`` import the main script again. ``instead`` says what else the user may
    do (connect to a running cluster, another start method).

    Example:
        >>> refuse_unguarded_main("MultiProcessEngine", "fork", "")  # fork never re-imports
    """
    if not _workers_import_main(start_method):
        return
    frame = _main_top_level_frame()
    if frame is None:
        return  # not called from the main script's top level: nothing re-runs it
    filename, line = frame.f_code.co_filename, frame.f_lineno
    if inside_main_guard(filename, line, frame):
        return
    raise UnguardedMainError(
        f"{engine} is started from the top level of {filename} (line {line}), outside an "
        f"{GUARD} block. Its worker processes start by importing that script again "
        f"('{start_method}' start method), which would run this line again in each of them "
        "while they start, and they would fail. Put the code that runs the pipes under "
        f"{GUARD}" + (f", or {instead}" if instead else "")
    )


# --------------------------------------------------------------------------- helpers


def _main_script() -> str | None:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return getattr(spec, "name", None) or getattr(main, "__file__", None)


def _workers_import_main(start_method: str) -> bool:
    """Whether workers started with ``start_method`` import the main module again: the rules
    of ``multiprocessing.spawn.get_preparation_data`` and ``_fixup_main_from_*``."""
    if start_method not in ("spawn", "forkserver"):
        return False
    main = sys.modules.get("__main__")
    spec_name = getattr(getattr(main, "__spec__", None), "name", None)
    if spec_name is not None:
        # `python -m pkg.mod`: spawn re-runs it by name, except a package's __main__.py;
        # forkserver preloads only a main given by path.
        return start_method == "spawn" and not (spec_name == "__main__" or spec_name.endswith(".__main__"))
    path = getattr(main, "__file__", None)
    if not path:
        return False  # the interactive interpreter, `python -c`, a notebook
    return os.path.splitext(os.path.basename(path))[0] != "ipython"


def _main_top_level_frame() -> FrameType | None:
    """The outermost frame running the main module's top-level code, or None."""
    main = sys.modules.get("__main__")
    if main is None:
        return None
    found = None
    frame: FrameType | None = inspect.currentframe()
    while frame is not None:
        if frame.f_code.co_name == "<module>" and frame.f_globals is vars(main):
            found = frame
        frame = frame.f_back
    return found


def inside_main_guard(filename: str, line: int, frame: FrameType) -> bool:
    """Whether ``line`` of ``filename`` lies in the body of an ``if __name__ == "__main__":``
    (or in the ``else`` of an ``if __name__ != "__main__":``). When the source cannot be
    read or parsed, True: never refuse a script on a guess."""
    source = "".join(linecache.getlines(filename, frame.f_globals))
    try:
        tree = ast.parse(source, filename)
    except (SyntaxError, ValueError):
        return True
    if not source:
        return True
    for node in ast.walk(tree):
        if not isinstance(node, ast.If):
            continue
        equal = _compares_name_to_main(node.test)
        if equal is None:
            continue
        guarded = node.body if equal else node.orelse
        if any(stmt.lineno <= line <= (stmt.end_lineno or stmt.lineno) for stmt in guarded):
            return True
    return False


def _compares_name_to_main(test: ast.expr) -> bool | None:
    """True for ``__name__ == "__main__"`` (either side), False for ``!=``, else None."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
        return None
    sides = [test.left, test.comparators[0]]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    mains = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    if not (names and mains):
        return None
    if isinstance(test.ops[0], ast.Eq):
        return True
    if isinstance(test.ops[0], ast.NotEq):
        return False
    return None
