"""One offloaded call on a worker: inputs in, the function run, outputs stored.

The worker keeps the objects it fetched in a node cache (``<zoopipe cache dir>/offload-objects``,
DVC's layout, read-only files) and hard-links them into the call's own scratch directory, so a
second call with the same inputs downloads nothing and copies nothing. Outputs are stored only
when the function returned; the scratch directory is removed either way.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import logging
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from zoopipe_core.installers.host_install import cache_dir
from zoopipe_core.parallel.offload.paths import Location, replaced
from zoopipe_core.syncers import ContentStore, HashCache, Manifest, link_or_copy

logger = logging.getLogger("zoopipe.offload")

#: Marks the wrapper ``remote`` makes, so a worker resolving the function by name unwraps it.
OFFLOAD_MARK = "__zoopipe_offload__"


@dataclasses.dataclass(frozen=True)
class FunctionByName:
    """A module-level function sent by name: its module's attribute is the offloading wrapper,
    which the worker unwraps to run the function itself (and not offload again).

    Example:
        >>> FunctionByName("os.path", "join").resolve()("a", "b")
        'a/b'
    """

    module: str
    qualname: str

    def resolve(self) -> Any:
        target: Any = importlib.import_module(self.module)
        for part in self.qualname.split("."):
            target = getattr(target, part)
        return unwrap_offloaded(target)


def unwrap_offloaded(target: Any) -> Any:
    """The function under the offloading wrapper in ``target``'s ``__wrapped__`` chain (decorators
    stacked above it, such as ``hydra.main``, are skipped)."""
    seen = target
    while seen is not None:
        wrapped = getattr(seen, "__wrapped__", None)
        # The mark holds the wrapped function; functools.wraps in a decorator stacked above
        # copies the mark onto its own wrapper, whose __wrapped__ is then not that function.
        if wrapped is not None and getattr(seen, OFFLOAD_MARK, None) is wrapped:
            return wrapped
        seen = wrapped
    return target


@dataclasses.dataclass
class OffloadJob:
    """What the driver sends: the function, its arguments, and where its paths go."""

    function: Any
    arguments: dict[str, Any]
    deps: list[tuple[Location, Manifest, str]]  # where, what, the local path's base name
    outs: list[tuple[Location, str]]
    store: ContentStore
    run_id: str


@dataclasses.dataclass
class OffloadResult:
    """What comes back: the return value, each output's manifest, and the bytes moved."""

    value: Any
    outs: list[Manifest]
    downloaded: int
    uploaded: int
    worker: str


def node_objects() -> ContentStore:
    """This host's cache of fetched objects."""
    return ContentStore(str(cache_dir() / "offload-objects"))


def run_offloaded(job: OffloadJob) -> OffloadResult:
    """Run ``job`` on this worker (the task the driver submits)."""
    fn = job.function.resolve() if isinstance(job.function, FunctionByName) else job.function
    scratch = Path(tempfile.mkdtemp(prefix=f"zoopipe-offload-{job.run_id[:12]}-"))
    # Outputs are fresh files, hashed once: no SQLite here. (A worker forked by local processes
    # while another driver thread was inside SQLite would also wait forever on its copied lock.)
    cache = HashCache(persistent=False)
    try:
        local = node_objects()
        downloaded = 0
        values: dict[Location, Any] = {}
        linked: dict[Path, tuple[int, int]] = {}
        # Each path under a directory of its own, with its local base name: two deps named
        # data/ never collide, and a file keeps its suffix.
        for index, (location, manifest, name) in enumerate(job.deps):
            path = scratch / "deps" / str(index) / name
            downloaded += materialise(manifest, path, job.store, local, linked)
            values[location] = str(path)
        outs: list[Path] = []
        for index, (location, name) in enumerate(job.outs):
            path = scratch / "outs" / str(index) / name
            path.mkdir(parents=True)
            outs.append(path)
            values[location] = str(path)
        arguments = replaced(job.arguments, values)
        bound = inspect.BoundArguments(inspect.signature(fn), arguments)
        try:
            value = fn(*bound.args, **bound.kwargs)
        finally:
            _evict_changed(linked)
        manifests: list[Manifest] = []
        uploaded = 0
        for (location, _), path in zip(job.outs, outs, strict=True):
            if not path.exists():
                raise FileNotFoundError(
                    f"the offloaded function removed its output {location.spec!r} ({path}) and wrote "
                    "nothing there; write files into the directory it is given"
                )
            manifest = Manifest.of(path, cache)
            uploaded += job.store.push(path, manifest)
            manifests.append(manifest)
        return OffloadResult(value, manifests, downloaded, uploaded, _worker_name())
    finally:
        cache.close()
        shutil.rmtree(scratch, ignore_errors=True)


def materialise(
    manifest: Manifest,
    destination: Path,
    remote: ContentStore,
    local: ContentStore,
    linked: dict[Path, tuple[int, int]],
) -> int:
    """Lay ``manifest``'s content out at ``destination`` from the node cache, fetching what the
    cache lacks from ``remote`` first; return the bytes fetched. Each object used is recorded in
    ``linked`` with its (size, mtime) so a function that writes into its input is noticed."""
    wanted = {entry.md5: entry.size for entry in manifest.files}
    missing = [md5 for md5 in wanted if not Path(local.object_path(md5)).is_file()]
    if missing:
        arriving = [(md5, Path(local.object_path(md5) + f".tmp-{uuid.uuid4().hex}")) for md5 in missing]
        try:
            remote.fetch(arriving)
            for md5, temporary in arriving:
                temporary.chmod(0o444)
                os.replace(temporary, local.object_path(md5))
        finally:
            for _, temporary in arriving:
                temporary.unlink(missing_ok=True)
    if manifest.kind == "dir":
        destination.mkdir(parents=True)
    for entry in manifest.files:
        source = Path(local.object_path(entry.md5))
        target = manifest.local_path(destination, entry)
        target.parent.mkdir(parents=True, exist_ok=True)
        link_or_copy(source, target)
        stat = source.stat()
        linked[source] = (stat.st_size, stat.st_mtime_ns)
    return sum(wanted[md5] for md5 in missing)


def _evict_changed(linked: dict[Path, tuple[int, int]]) -> None:
    """Drop cached objects whose file changed while linked into a run's inputs (the function
    wrote into an input it was given): the next run fetches them again."""
    for source, (size, mtime_ns) in linked.items():
        try:
            stat = source.stat()
        except FileNotFoundError:
            continue
        if (stat.st_size, stat.st_mtime_ns) != (size, mtime_ns):
            logger.warning(
                "an offloaded function changed its input file %s; fetching it again next time", source
            )
            source.unlink(missing_ok=True)


def _worker_name() -> str:
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"
