"""``remote``: run a function on an engine's worker while its input and output paths stay local.

Where the data and the work go (see docs/offload.md):

1. The driver hashes each dep (MD5 per file, a stat cache skips unchanged files) and stores the
   files the content store lacks; a directory already stored costs one lookup.
2. One engine task (:func:`~zoopipe_core.parallel.offload.worker.run_offloaded`) lays the deps
   out in a scratch directory of its own from its host's object cache, gives each out an empty
   directory, runs the function, and stores the outputs' new files.
3. The driver builds each output beside its local path from the store (reusing local files
   that did not change), verifies it, and only then swaps every output into place.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import logging
import os
import pickle
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from zoopipe_core.engines import Engine
from zoopipe_core.parallel.offload.paths import Location, LocationError, replaced
from zoopipe_core.parallel.offload.storage import open_store
from zoopipe_core.parallel.offload.worker import (
    OFFLOAD_MARK,
    FunctionByName,
    OffloadJob,
    OffloadResult,
    run_offloaded,
    unwrap_offloaded,
)
from zoopipe_core.syncers import ContentStore, HashCache, Manifest, remove_path, swap_in

logger = logging.getLogger("zoopipe.offload")


@dataclasses.dataclass(frozen=True)
class OffloadStats:
    """What one call moved and how long the driver spent synchronising (``Offload.last_run``).

    ``inputs_sent``: dep bytes the driver stored; ``inputs_fetched``: bytes the worker fetched
    into its host's cache; ``outputs_stored``: output bytes the worker stored;
    ``outputs_received``: bytes the driver downloaded; the ``*_seconds`` are the driver's time
    hashing and storing inputs, and staging outputs.

    Example:
        >>> import os.path, pathlib, tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "in.txt").write_text("abc")
        >>> with Offload(deps=["filename"], storage=folder / "store") as offload:
        ...     offload.call(os.path.getsize, folder / "in.txt")
        ...     offload.last_run.inputs_sent, offload.last_run.outputs_received
        3
        (3, 0)
    """

    run_id: str
    inputs_sent: int
    inputs_fetched: int
    outputs_stored: int
    outputs_received: int
    input_seconds: float
    output_seconds: float
    worker: str


class Offload:
    """Runs functions on an engine's worker; paths named in ``deps`` and ``outs`` stay local.

    - ``deps``: where the function's arguments hold input paths (files or directories): a
      parameter name, or a dotted path into dicts, lists, dataclasses and OmegaConf configs
      (``"config.data.path"``). Each is stored once by content and appears on the worker as a
      local path with the same content.
    - ``outs``: where they hold output paths. The function gets an empty, writable directory
      for each; what it leaves there replaces the local path once the whole run succeeded.
    - ``engine``: an :class:`~zoopipe_core.engines.Engine`, a registered name or None (local
      processes). One made here is started on first use and shut down by :meth:`close`.
    - ``storage``: where inputs and outputs travel through: an ``s3://`` URL, a local path or
      ``file://`` URL (a shared filesystem), ``"dvc"`` / ``"dvc://<remote>"`` (the DVC remote,
      so ``dvc push`` finds everything stored), or a :class:`~zoopipe_core.syncers.ContentStore`.
      None: ``ZOOPIPE_OFFLOAD_STORAGE``, else a store in this host's zoopipe cache directory
      (enough when the workers run on this host). ``storage_options`` go to its filesystem.

    The caller's arguments are never changed; a failed run leaves local outputs as they were.

    Example:
        >>> import pathlib, tempfile
        >>> from zoopipe_core import Offload
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "data").mkdir(); _ = (folder / "data" / "a.txt").write_text("3\\n4\\n")
        >>> def total(data_dir, out_dir):
        ...     numbers = [int(line) for line in open(f"{data_dir}/a.txt")]
        ...     pathlib.Path(out_dir, "sum.txt").write_text(str(sum(numbers)))
        ...     return len(numbers)
        >>> with Offload(deps=["data_dir"], outs=["out_dir"], storage=folder / "store") as offload:
        ...     offload.call(total, data_dir=folder / "data", out_dir=folder / "out")
        2
        >>> (folder / "out" / "sum.txt").read_text()
        '7'
    """

    def __init__(
        self,
        deps: Iterable[str] = (),
        outs: Iterable[str] = (),
        engine: Engine | str | None = None,
        storage: str | os.PathLike[str] | ContentStore | None = None,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        self.deps = _names("deps", deps)
        self.outs = _names("outs", outs)
        both = set(self.deps) & set(self.outs)
        if both:
            raise ValueError(f"{sorted(both)} are named in both deps and outs; a path is one or the other")
        self._engine_spec = engine
        self._engine: Engine | None = engine if isinstance(engine, Engine) else None
        self._owns_engine = not isinstance(engine, Engine)
        self._engine_lock = threading.Lock()
        self.store = open_store(storage, storage_options)
        self._reachable = False
        #: What the last completed call moved (:class:`OffloadStats`), or None.
        self.last_run: OffloadStats | None = None

    def __repr__(self) -> str:
        return f"<Offload deps={list(self.deps)} outs={list(self.outs)} store={self.store!r}>"

    @property
    def engine(self) -> Engine:
        """The engine calls run on (made from the name given, on first use)."""
        with self._engine_lock:
            if self._engine is None:
                from zoopipe_core.plugins import resolve_engine

                self._engine = resolve_engine(self._engine_spec)
            return self._engine

    def close(self) -> None:
        """Shut down the engine made here (an engine passed in is left running)."""
        if self._owns_engine and self._engine is not None:
            self._engine.shutdown()

    def __enter__(self) -> Offload:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Decorate ``fn``: each call of the result runs through :meth:`call`."""
        if not callable(fn):
            raise TypeError(f"remote() decorates a callable, got {type(fn).__name__} {fn!r}")
        self._locations(fn)  # a dep or out naming no parameter fails at decoration

        @functools.wraps(fn)
        def offloaded(*args: Any, **kwargs: Any) -> Any:
            return self.call(fn, *args, **kwargs)

        setattr(offloaded, OFFLOAD_MARK, fn)
        offloaded.offload = self  # type: ignore[attr-defined]
        return offloaded

    # ------------------------------------------------------------------ one call

    def call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` on a worker with its deps uploaded and outs brought back.

        Raises :class:`~zoopipe_core.parallel.offload.paths.LocationError` (a ValueError) or
        FileNotFoundError on the driver, before anything is submitted, when a dep or out is
        missing from the arguments or a dep's path does not exist; StorageError when the store
        cannot be reached. An exception of ``fn`` is raised here with its original type, and
        its remote traceback as ``__cause__``.
        """
        fn = unwrap_offloaded(fn)
        signature = inspect.signature(fn)
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{_name(fn)}(): {exc}") from None
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        deps, outs = self._locations(fn)
        dep_paths = {location: Path(location.path(arguments)) for location in deps}
        out_paths = {location: Path(location.path(arguments)) for location in outs}
        for location, path in dep_paths.items():
            if not path.exists():
                raise FileNotFoundError(
                    f"dep {location.spec!r} of {_name(fn)} is {path}, which does not exist; create it "
                    "or pass the right path"
                )
        _check_distinct(out_paths)
        if not self._reachable:
            self.store.check_reachable()
            self._reachable = True
        started = time.perf_counter()
        cache = HashCache()
        try:
            manifests = [(location, Manifest.of(path, cache)) for location, path in dep_paths.items()]
            uploaded = 0
            for location, manifest in manifests:
                path = dep_paths[location]
                uploaded += self.store.push(path, manifest, cache.last_pushed(self.store.url, path))
                cache.remember_pushed(self.store.url, path, manifest.hash)
        finally:
            cache.close()
        synced = time.perf_counter() - started
        run_id = _run_id(fn, arguments, manifests, outs)
        logger.info(
            "offload %s run %s: inputs synced in %.2f s (%d bytes sent) to %s",
            _name(fn),
            run_id[:12],
            synced,
            uploaded,
            self.store.url,
        )
        job = OffloadJob(
            _shippable(fn),
            arguments,
            [(location, manifest, _base_name(dep_paths[location])) for location, manifest in manifests],
            [(location, _base_name(out_paths[location])) for location in outs],
            self.store,
            run_id,
        )
        engine = self.engine
        future = engine.submit(run_offloaded, job)
        try:
            result: OffloadResult = future.result()
        except BaseException:
            if not future.done():
                engine.cancel(future)
            raise
        received, output_seconds = self._bring_back(result, out_paths)
        self.last_run = OffloadStats(
            run_id,
            uploaded,
            result.downloaded,
            result.uploaded,
            received,
            synced,
            output_seconds,
            result.worker,
        )
        return result.value

    def _locations(self, fn: Callable[..., Any]) -> tuple[list[Location], list[Location]]:
        signature = inspect.signature(unwrap_offloaded(fn))
        return (
            [Location.parse(spec, signature) for spec in self.deps],
            [Location.parse(spec, signature) for spec in self.outs],
        )

    def _bring_back(self, result: OffloadResult, out_paths: dict[Location, Path]) -> tuple[int, float]:
        """Stage every output beside its local path, then swap them all in: a failure while
        staging leaves every local output as it was."""
        started = time.perf_counter()
        staged: list[tuple[Path, Path]] = []
        downloaded = 0
        cache = HashCache()
        try:
            for (location, local), manifest in zip(out_paths.items(), result.outs, strict=True):
                temporary, size = self.store.stage(manifest, local, cache)
                staged.append((temporary, local))
                downloaded += size
                logger.debug("output %s staged at %s", location.spec, temporary)
        except BaseException:
            for temporary, _ in staged:
                remove_path(temporary)
            raise
        finally:
            cache.close()
        for temporary, local in staged:
            swap_in(temporary, local)
        seconds = time.perf_counter() - started
        logger.info(
            "offload outputs synced in %.2f s (%d bytes received; worker %s)",
            seconds,
            downloaded,
            result.worker,
        )
        return downloaded, seconds


def remote(
    deps: Iterable[str] = (),
    outs: Iterable[str] = (),
    engine: Engine | str | None = None,
    storage: str | os.PathLike[str] | ContentStore | None = None,
    storage_options: dict[str, Any] | None = None,
) -> Offload:
    """Decorator: run the function on an engine's worker; its input and output paths stay local.

    ``remote(deps=[...], outs=[...], engine=..., storage=...)`` is :class:`Offload`; see it for
    each argument.

    Example:
        >>> import pathlib, tempfile
        >>> from zoopipe_core import remote
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "words.txt").write_text("a b c")
        >>> @remote(deps=["words"], outs=["out_dir"], storage=folder / "store")
        ... def count(words, out_dir):
        ...     n = len(open(words).read().split())
        ...     pathlib.Path(out_dir, "n.txt").write_text(str(n))
        ...     return n
        >>> count(folder / "words.txt", out_dir=folder / "out")
        3
        >>> (folder / "out" / "n.txt").read_text()
        '3'
        >>> count.offload.close()
    """
    return Offload(deps, outs, engine, storage, storage_options)


def _names(kind: str, names: Iterable[str]) -> tuple[str, ...]:
    if isinstance(names, str):
        raise TypeError(f"{kind} is a list of names, e.g. {kind}=[{names!r}], not a string")
    listed = tuple(names)
    if len(set(listed)) != len(listed):
        raise ValueError(f"{kind} names a location twice: {list(listed)}")
    return listed


def _check_distinct(out_paths: dict[Location, Path]) -> None:
    seen: dict[Path, str] = {}
    for location, path in out_paths.items():
        resolved = path.resolve()
        if resolved in seen:
            raise ValueError(f"outs {seen[resolved]!r} and {location.spec!r} are the same path {path}")
        seen[resolved] = location.spec


def _base_name(path: Path) -> str:
    return path.absolute().name or "root"


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__


def _shippable(fn: Callable[..., Any]) -> Any:
    """``fn`` by name when its module's attribute of that name leads to it (the wrapper, which
    does not pickle as ``fn``), else ``fn`` itself for the engine's serializer (``__main__``
    functions, closures: cloudpickle on Ray and Dask)."""
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    if not module or not qualname or module == "__main__" or "<locals>" in qualname:
        return fn
    named = FunctionByName(module, qualname)
    try:
        if named.resolve() is fn:
            return named
    except Exception:
        pass
    return fn


def _run_id(
    fn: Callable[..., Any],
    arguments: dict[str, Any],
    manifests: list[tuple[Location, Manifest]],
    outs: list[Location],
) -> str:
    """A digest of the function's identity, its non-path arguments and its inputs' content."""
    digest = hashlib.sha256()
    digest.update(f"{getattr(fn, '__module__', '')}.{_name(fn)}".encode())
    code = getattr(fn, "__code__", None)
    if code is not None:
        digest.update(code.co_code)
    blanked = replaced(arguments, {**{loc: None for loc, _ in manifests}, **{loc: None for loc in outs}})
    try:
        digest.update(pickle.dumps(sorted(blanked.items(), key=lambda item: item[0]), protocol=4))
    except Exception:
        digest.update(repr(sorted(blanked.items(), key=lambda item: item[0])).encode())
    for location, manifest in manifests:
        digest.update(f"{location.spec}={manifest.hash}\n".encode())
    digest.update(",".join(loc.spec for loc in outs).encode())
    return digest.hexdigest()


__all__ = ["LocationError", "Offload", "OffloadStats", "remote"]
