"""The Dask worker plugin that applies a WorkerEnvironment; imports ``distributed``, so the
engine imports this module only once it runs."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin


class EnvironmentPlugin(WorkerPlugin):
    """A Dask worker plugin giving every worker, present and future, a WorkerEnvironment.

    ``setup`` writes the uploaded code archives into the worker's local directory and puts
    them on ``sys.path``, and sets ``env_vars``; ``teardown`` (when replaced or removed)
    restores the variables and the path.

    Example (DaskEngine.prepare registers it; here on a stand-in worker):
        >>> import os, tempfile, types
        >>> plugin = EnvironmentPlugin({}, {"ZOOPIPE_EXAMPLE_MODE": "fast"})
        >>> worker = types.SimpleNamespace(local_directory=tempfile.mkdtemp())
        >>> plugin.setup(worker)
        >>> os.environ["ZOOPIPE_EXAMPLE_MODE"]
        'fast'
        >>> plugin.teardown(worker)
        >>> "ZOOPIPE_EXAMPLE_MODE" in os.environ
        False
    """

    def __init__(self, archives: dict[str, bytes], env_vars: dict[str, str]) -> None:
        self.archives = archives
        self.env_vars = env_vars
        self._previous: dict[str, str | None] = {}
        self._paths: list[str] = []

    def setup(self, worker: Any) -> None:
        folder = Path(worker.local_directory) / "zoopipe-code"
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in self.archives.items():
            path = folder / name
            path.write_bytes(data)
            self._paths.append(str(path))
        sys.path[:0] = [p for p in self._paths if p not in sys.path]
        importlib.invalidate_caches()
        for key, value in self.env_vars.items():
            self._previous[key] = os.environ.get(key)
            os.environ[key] = value

    def teardown(self, worker: Any) -> None:
        for key, value in self._previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        for path in self._paths:
            if path in sys.path:
                sys.path.remove(path)
