"""The Dask worker plugin that applies a WorkerEnvironment; imports ``distributed``, so the
engine imports this module only once it runs."""

from __future__ import annotations

import asyncio
import importlib
import io
import os
import sys
import uuid
import zipfile
from pathlib import Path
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from zoopipe_core.installers import InstallFailed, install_once

#: How much of its environment tag a prepared worker declares: far more than it runs at once,
#: so the tag steers tasks without limiting them (each takes 1).
TAG_AMOUNT = 1_000_000


class EnvironmentPlugin(WorkerPlugin):
    """A Dask worker plugin giving every worker, present and future, a WorkerEnvironment.

    ``setup`` installs ``requirements`` once per host (``install_once``: the host's other
    workers, and later starts, reuse that install) and puts them on ``sys.path``, unpacks the
    uploaded code archives into the worker's local directory and puts them on ``sys.path``,
    and sets ``env_vars``. A worker whose install succeeded declares the resource ``tag``,
    which the engine's tasks require: work never goes to a worker whose install failed. That
    failure is kept in ``failure`` and sent, with the installer's own lines, on the engine's
    event ``topic``. ``teardown`` (when replaced or removed) withdraws the tag and restores the
    variables and the path.

    Example (DaskEngine registers it; here on a stand-in worker):
        >>> import asyncio, os, tempfile, types
        >>> plugin = EnvironmentPlugin({}, {"ZOOPIPE_EXAMPLE_MODE": "fast"})
        >>> worker = types.SimpleNamespace(local_directory=tempfile.mkdtemp())
        >>> asyncio.run(plugin.setup(worker))
        >>> os.environ["ZOOPIPE_EXAMPLE_MODE"], plugin.failure
        ('fast', None)
        >>> asyncio.run(plugin.teardown(worker))
        >>> "ZOOPIPE_EXAMPLE_MODE" in os.environ
        False
    """

    def __init__(
        self,
        archives: dict[str, bytes],
        env_vars: dict[str, str],
        requirements: list[str] | None = None,
        installer: str = "pip",
        tag: str = "",
        topic: str = "",
    ) -> None:
        self.archives = archives
        self.env_vars = env_vars
        self.requirements = list(requirements or [])
        self.installer = installer
        self.tag = tag
        self.topic = topic
        self.attempt = uuid.uuid4().hex  # workers of this registration share a failed install
        self.failure: str | None = None
        self._previous: dict[str, str | None] = {}
        self._paths: list[str] = []

    async def setup(self, worker: Any) -> None:
        self.failure = None
        if self.requirements:
            try:
                done = await asyncio.to_thread(
                    install_once, self.requirements, self.installer, attempt=self.attempt
                )
            except InstallFailed as exc:
                self.failure = str(exc)
                if self.topic:
                    worker.log_event(
                        self.topic, {"environment_failed": self.failure, "worker": worker.address}
                    )
            else:
                self._paths.append(done.path)
        folder = Path(worker.local_directory) / "zoopipe-code"
        for name, data in self.archives.items():
            # Unpacked, not imported from the zip: a compiled module (zoopipe's own core) cannot
            # be imported from a zip, and code reading files beside its modules needs files.
            path = folder / Path(name).stem
            if not path.is_dir():
                partial = folder / f"{Path(name).stem}.partial-{os.getpid()}"
                with zipfile.ZipFile(io.BytesIO(data)) as archive:
                    archive.extractall(partial)
                partial.replace(path)
            self._paths.append(str(path))
        sys.path[:0] = [p for p in self._paths if p not in sys.path]
        importlib.invalidate_caches()
        for key, value in self.env_vars.items():
            self._previous[key] = os.environ.get(key)
            os.environ[key] = value
        if self.tag and self.failure is None:
            await worker.set_resources(**{self.tag: TAG_AMOUNT})

    async def teardown(self, worker: Any) -> None:
        if self.tag and self.failure is None and hasattr(worker, "set_resources"):
            # The tag says "prepared by this plugin": gone with it (a later plugin with the same
            # requirements declares it again once its own setup has run).
            await worker.set_resources(**{self.tag: 0})
        for key, value in self._previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        for path in self._paths:
            if path in sys.path:
                sys.path.remove(path)


def environment_failure(name: str, dask_worker: Any = None) -> str | None:
    """Run by ``client.run`` on each worker: why the EnvironmentPlugin ``name`` could not
    prepare it, or None."""
    plugin = dask_worker.plugins.get(name) if dask_worker is not None else None
    return getattr(plugin, "failure", None)
