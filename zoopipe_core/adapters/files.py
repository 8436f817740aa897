"""File inputs and outputs for parallel runs: one path or a list of paths, byte-range splitting
of one file, and the names of the parts shards write.

The protocol lives on the adapters, so a plugin's adapter can take part:

- ``InputAdapter.split(workers) -> list[InputAdapter]``: the input as independent shards, or
  :class:`~zoopipe_core.errors.ShardingError` saying why it cannot be split (a ``.gz`` file, a
  Python generator). :class:`FileListInput` implements it for the file inputs: one shard per file
  of a list; one file cut into byte ranges here (CSV, JSON Lines) or into row ranges
  (:mod:`zoopipe_core.adapters.tables`: Parquet, Arrow).
- ``OutputAdapter.shard(index) -> OutputAdapter`` and ``OutputAdapter.merge_parts(parts)``:
  where shard ``index`` writes (:func:`part_path`), and one file from the parts
  (:mod:`zoopipe_core.adapters.merge`).
"""

from __future__ import annotations

import copy
import os
from typing import Any

from zoopipe_core.adapters.balance import pieces_per_file
from zoopipe_core.adapters.expand import expand, is_pattern
from zoopipe_core.adapters.ranged import object_size
from zoopipe_core.adapters.ranged_split import split_url_file
from zoopipe_core.adapters.storage import compression_for, is_local, local_path
from zoopipe_core.errors import ShardingError

_COMPRESSION_SUFFIXES = (".gz", ".zst")


def part_path(path: str, index: int) -> str:
    """Where shard ``index`` of the output ``path`` goes: ``.part-NNNNN`` before the format's
    suffix, after any compression suffix is set aside.

    Example:
        >>> part_path("out/users.jsonl", 3), part_path("users.csv.gz", 0), part_path("data", 1)
        ('out/users.part-00003.jsonl', 'users.part-00000.csv.gz', 'data.part-00001')
    """
    if index < 0:
        raise ValueError(f"a shard index is >= 0, got {index}")
    compression = next((s for s in _COMPRESSION_SUFFIXES if path.endswith(s)), "")
    stem = path[: len(path) - len(compression)]
    slash = max(stem.rfind("/"), stem.rfind(os.sep))
    dot = stem.rfind(".")
    if dot <= slash + 1:  # no suffix (a leading dot names a hidden file, not a suffix)
        return f"{stem}.part-{index:05d}{compression}"
    return f"{stem[:dot]}.part-{index:05d}{stem[dot:]}{compression}"


def check_workers(workers: int) -> int:
    """``workers`` if it is a positive int; ValueError otherwise.

    Example:
        >>> check_workers(4)
        4
    """
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    return workers


class FileListInput:
    """Mixin for file inputs that take one path, a list of paths, or a pattern: a directory, a
    prefix ending in ``/`` or a glob, local or any fsspec URL (``s3://bucket/data/*.csv``).
    A pattern is expanded once (:meth:`resolve_files`, :mod:`zoopipe_core.adapters.expand`; a
    directory or prefix keeps the files with one of ``input_suffixes()``), when the input is
    split or run, so a pattern that matches nothing fails the run as a missing file does.

    Several files are read by ``PipeManager.parallelize_pipe``; a single pipe reads one file.
    ``split(workers)`` balances several files by bytes (:func:`~zoopipe_core.adapters.balance.
    pieces_per_file`): each file is at least one shard, and a file larger than its share is cut
    further with ``split_one_file(n)``: byte ranges at exact record boundaries (found by the Rust
    scanner; for a file on a URL from small windows around each cut) here, row ranges for the Parquet and Arrow inputs
    (:class:`~zoopipe_core.adapters.tables.TableFileInput`).

    Example:
        >>> from zoopipe_core import JSONInputAdapter
        >>> [shard.path for shard in JSONInputAdapter(["a.jsonl", "b.jsonl", "c.jsonl"]).split(2)]
        ['a.jsonl', 'b.jsonl', 'c.jsonl']
    """

    paths: list[str]
    path: str
    split_kind = ""  # "csv" or "jsonl": what zoopipe_core._native.split_points scans for
    file_suffixes: tuple[str, ...] = ()  # the files of a directory or prefix this input reads

    def input_suffixes(self) -> tuple[str, ...]:
        """The suffixes (before any ``.gz``/``.zst``) of the files a directory or prefix gives."""
        return self.file_suffixes

    def _take_paths(self, path: Any) -> str:
        """Record ``path`` (one, or a list; patterns expanded later by :meth:`resolve_files`) in
        ``self.paths``; return the first."""
        if isinstance(path, (list, tuple)):
            if not path:
                raise ValueError(f"{type(self).__name__} got an empty list of paths; give at least one")
            self.paths = [os.fspath(p) for p in path]
        else:
            self.paths = [os.fspath(path)]
        self.patterns = [p for p in self.paths if is_pattern(p)]
        self.sizes: dict[str, int] = {}  # bytes per file, as the expansion of patterns listed them
        return self.paths[0]

    def resolve_files(self) -> list[str]:
        """``self.paths`` with every pattern replaced by its files (sorted), expanded once: the
        first call sets ``paths``, ``path`` (the first file) and ``sizes``; later calls, and the
        shards' copies, reuse them.

        Example:
            >>> import fsspec
            >>> from zoopipe_core import CSVInputAdapter
            >>> for name in ["b.csv", "a.csv", "_SUCCESS"]:
            ...     fsspec.filesystem("memory").pipe(f"/resolve-doc/{name}", b"id\\n1\\n")
            >>> files = CSVInputAdapter("memory://resolve-doc/")
            >>> files.path, files.resolve_files(), files.path
            ('memory://resolve-doc/', ['memory:///resolve-doc/a.csv', 'memory:///resolve-doc/b.csv'], 'memory:///resolve-doc/a.csv')
        """
        patterns = getattr(self, "patterns", [])
        if not patterns:
            return self.paths
        paths: list[str] = []
        for entry in self.paths:
            if entry not in patterns:
                paths.append(entry)
                continue
            for found in expand(entry, self.input_suffixes()):
                paths.append(found.path)
                self.sizes[found.path] = found.size
        self.paths, self.path = paths, paths[0]
        self.given_patterns, self.patterns = patterns, []
        return paths

    def _check_single_file(self) -> None:
        paths = self.resolve_files() if hasattr(self, "paths") else None
        if paths is not None and len(paths) > 1:
            given = getattr(self, "given_patterns", [])
            source = f" (from {', '.join(map(repr, given))})" if given else ""
            raise ShardingError(
                f"{type(self).__name__} got {len(paths)} files{source}; one pipe reads one file. Read "
                "them with PipeManager.parallelize_pipe(pipe, workers=N) (one shard per file or more), "
                "or build one pipe per file"
            )

    def split_options(self) -> dict[str, Any]:
        """Keyword arguments of ``zoopipe_core._native.split_points`` for this input's format
        (the CSV dialect); none by default."""
        return {}

    def _for_file(self, path: str) -> Any:
        shard = copy.copy(self)
        shard.path, shard.paths = path, [path]
        sizes = getattr(self, "sizes", {})
        shard.sizes = {path: sizes[path]} if path in sizes else {}
        return shard

    def can_split_file(self, path: str) -> bool:
        """Whether ``split_one_file`` can cut ``path`` of a multi-file input: uncompressed CSV or
        JSON Lines, local or on a URL. Others stay one shard each."""
        return compression_for(path) == "none" and getattr(self, "format", None) != "array"

    def file_size(self, path: str) -> int:
        """Bytes of ``path``: as listed by the pattern's expansion, else the file's size (a URL's
        from its metadata), else 0 (a missing file: the shard reports it when it runs)."""
        sizes = getattr(self, "sizes", {})
        if path in sizes:
            return int(sizes[path])
        if is_local(path):
            return os.path.getsize(local_path(path)) if os.path.isfile(local_path(path)) else 0
        try:
            return object_size(path)
        except FileNotFoundError:
            return 0

    def split(self, workers: int) -> list[Any]:
        """Shards of this input. Several files are balanced by bytes: each file is one shard or,
        when larger than ``total / workers`` and splittable, ``pieces_per_file`` pieces of it.
        One file is ``split_one_file(workers)``."""
        check_workers(workers)
        refuse_skip_rows_and_limit(self)
        if len(self.resolve_files()) == 1:
            return self.split_one_file(workers)
        sizes = [self.file_size(p) for p in self.paths]
        pieces = pieces_per_file(sizes, workers, [self.can_split_file(p) for p in self.paths])
        shards: list[Any] = []
        for path, count in zip(self.paths, pieces, strict=True):
            whole = self._for_file(path)
            shards.extend(whole.split_one_file(count) if count > 1 else [whole])
        return shards

    def split_one_file(self, workers: int) -> list[Any]:
        """Shards of one file: byte ranges (CSV, JSON Lines). Table inputs override it."""
        return split_file(self, workers)


def refuse_skip_rows_and_limit(adapter: Any) -> None:
    """ShardingError when ``adapter`` has skip_rows or limit: they count from the start of the
    whole input, which no single shard sees."""
    if getattr(adapter, "skip_rows", 0) or getattr(adapter, "limit", None) is not None:
        raise ShardingError(
            f"{type(adapter).__name__}({adapter.path!r}) has skip_rows or limit, which count records "
            "from the start of the input; shards cannot honour them. Drop them to parallelize"
        )


def split_file(adapter: Any, workers: int) -> list[Any]:
    """Byte ranges of one uncompressed CSV or JSON Lines file, cut at record boundaries: a local
    file by scanning it, a file on a URL from small windows around each cut
    (:func:`~zoopipe_core.adapters.ranged_split.split_url_file`)."""
    path, name = adapter.path, type(adapter).__name__
    if getattr(adapter, "format", None) == "array":
        raise ShardingError(
            f"{path} is one JSON array, which cannot be cut into byte ranges; write JSON Lines "
            "(one object per line) or pass a list of files (one shard each)"
        )
    if getattr(adapter, "byte_range", None) is not None:
        raise ShardingError(f"{name}({path!r}) is already a shard of its file; split the whole file")
    if compression_for(path) != "none":
        raise ShardingError(
            f"{path} is compressed ({compression_for(path)}): a compressed stream can only be read "
            "from its start, so it cannot be split between workers. Pass a list of files (one shard "
            "each) or an uncompressed file"
        )
    if not is_local(path):
        return split_url_file(adapter, workers)
    # Imported here, not at the top: reading an adapter's options needs no native module.
    from zoopipe_core import _native

    split_points = getattr(_native, "split_points", None)
    if split_points is None:
        raise ShardingError(
            "this build of zoopipe_core._native has no split_points(): rebuild the extension "
            "(`make native`), or pass a list of files (one shard each)"
        )
    if not os.path.isfile(local_path(path)):
        raise ShardingError(f"cannot split {path}: no such file")
    points = split_points(local_path(path), adapter.split_kind, workers, **adapter.split_options())
    shards = []
    for start, end, line_offset in points:
        shard = copy.copy(adapter)
        shard.byte_range, shard.line_offset = (start, end), line_offset
        shards.append(shard)
    return shards
