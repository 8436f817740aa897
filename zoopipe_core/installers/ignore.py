"""Which files of a project's code ship to workers: ignore files, matched by git's rules.

The one place an engine that uploads code decides what to leave out. :data:`ALWAYS_EXCLUDED`
comes first; then the patterns of the ``WorkerEnvironment.ignore_file`` (``.rayignore``), read by
:func:`read_ignore_file`, are matched with
`pathspec <https://python-path-specification.readthedocs.io>`_'s implementation of gitignore
(negation with ``!``, directory-only ``dir/``, anchored ``/top`` and ``a/b``, ``**``). The Dask
engine walks code paths with :meth:`IgnoreRules.files`; the Ray engine hands the same patterns to
Ray's uploader as ``excludes``, which matches them with gitignore's rules as well.

Example:
    >>> rules = IgnoreRules(["*.log", "!keep.log", "build/", "/notes.txt"])
    >>> [rules.ignored(p) for p in ("a.log", "keep.log", "notes.txt", "docs/notes.txt")]
    [True, False, True, False]
    >>> rules.ignored("build", is_dir=True), rules.ignored("build", is_dir=False)
    (True, False)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import pathspec

#: What never ships to workers unless an ignore file's ``!`` pattern brings it back: version
#: control, environments, build output, caches and DVC's cache (data, which DVC itself moves).
ALWAYS_EXCLUDED = (
    ".git/",
    ".hg/",
    ".venv/",
    "target/",
    "__pycache__/",
    "*.egg-info/",
    "**/.dvc/cache/",
    ".mypy_cache/",
    ".pytest_cache/",
    ".ruff_cache/",
)

#: Where :data:`ALWAYS_EXCLUDED` comes from, as explanations name it.
BUILT_IN = "zoopipe's built-in excludes"


def read_ignore_file(path: str | os.PathLike[str] | None) -> list[str]:
    """The patterns of an ignore file: one per line, blank lines and ``#`` comments left out.

    None, or a file that does not exist, gives no patterns.

    Example:
        >>> import pathlib, tempfile
        >>> ignore = pathlib.Path(tempfile.mkdtemp()) / ".rayignore"
        >>> _ = ignore.write_text("# caches\\n__pycache__/\\n\\n*.pyc\\n")
        >>> read_ignore_file(ignore), read_ignore_file(None)
        (['__pycache__/', '*.pyc'], [])
    """
    return [pattern for pattern, _ in read_ignore_lines(path)]


def read_ignore_lines(path: str | os.PathLike[str] | None) -> list[tuple[str, int]]:
    """The patterns of an ignore file with their line numbers (see :func:`read_ignore_file`)."""
    if not path or not Path(path).is_file():
        return []
    lines = (line.strip() for line in Path(path).read_text().splitlines())
    return [(line, number) for number, line in enumerate(lines, 1) if line and not line.startswith("#")]


@dataclasses.dataclass(frozen=True)
class Decision:
    """Whether a path ships, and the pattern that decides it with where it was written
    (``".rayignore:3"``); both None when no pattern matches (the path ships)."""

    ignored: bool
    pattern: str | None = None
    origin: str | None = None


class IgnoreRules:
    """gitignore patterns, matched against paths relative to the directory being shipped.

    As in git, a directory that is ignored is not entered: a ``!`` pattern cannot bring back a
    file inside it.

    Example:
        >>> import pathlib, tempfile
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> for name in ("main.py", "data/big.csv", "data/schema.csv", "cache/x.bin"):
        ...     (root / name).parent.mkdir(exist_ok=True); _ = (root / name).write_text("")
        >>> rules = IgnoreRules(["data/*.csv", "!data/schema.csv", "cache/"])
        >>> [p.relative_to(root).as_posix() for p in rules.files(root)]
        ['main.py', 'data/schema.csv']
    """

    def __init__(self, patterns: Iterable[str] = (), origins: Sequence[str] | None = None) -> None:
        self.patterns = list(patterns)
        # Where each pattern was written, for explanations; parallel to ``patterns``.
        self.origins = list(origins) if origins is not None else ["" for _ in self.patterns]
        self._spec = pathspec.GitIgnoreSpec.from_lines(self.patterns)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str] | None) -> IgnoreRules:
        """The rules of an ignore file (see :func:`read_ignore_file`); none if it does not exist."""
        return cls(read_ignore_file(path))

    @classmethod
    def for_shipping(cls, ignore_file: str | os.PathLike[str] | None) -> IgnoreRules:
        """:data:`ALWAYS_EXCLUDED`, then the patterns of ``ignore_file``, each with its origin.

        Example:
            >>> rules = IgnoreRules.for_shipping(None)
            >>> rules.decide("pkg/__pycache__/m.pyc")
            Decision(ignored=True, pattern='__pycache__/', origin="zoopipe's built-in excludes")
        """
        lines = read_ignore_lines(ignore_file)
        name = os.fspath(ignore_file) if ignore_file else ""
        return cls(
            [*ALWAYS_EXCLUDED, *(pattern for pattern, _ in lines)],
            [*(BUILT_IN for _ in ALWAYS_EXCLUDED), *(f"{name}:{number}" for _, number in lines)],
        )

    def ignored(self, relative: str | os.PathLike[str], is_dir: bool = False) -> bool:
        """Whether ``relative`` (a path relative to the shipped directory) is left out."""
        text = os.fspath(relative).replace(os.sep, "/").strip("/")
        return self._spec.match_file(f"{text}/" if is_dir else text)

    def decide(self, relative: str | os.PathLike[str], is_dir: bool = False) -> Decision:
        """Whether ``relative`` ships and which pattern decides: the one that leaves out a
        folder above it, else the last pattern matching it (git's rule).

        Example:
            >>> rules = IgnoreRules(["*.csv", "!schema.csv"], ["a:1", "a:2"])
            >>> rules.decide("schema.csv")
            Decision(ignored=False, pattern='!schema.csv', origin='a:2')
            >>> rules.decide("main.py")
            Decision(ignored=False, pattern=None, origin=None)
        """
        parts = os.fspath(relative).replace(os.sep, "/").strip("/").split("/")
        for depth in range(1, len(parts)):
            decision = self._check("/".join(parts[:depth]) + "/")
            if decision.ignored:
                return decision
        last = "/".join(parts)
        return self._check(f"{last}/" if is_dir else last)

    def _check(self, text: str) -> Decision:
        result = self._spec.check_file(text)
        if result.index is None:
            return Decision(False)
        return Decision(bool(result.include), self.patterns[result.index], self.origins[result.index] or None)

    def files(self, root: str | os.PathLike[str]) -> list[Path]:
        """The files under ``root`` that are not ignored, in a stable order (each folder's files
        by name, then its subfolders by name); ignored folders are not entered."""
        top = Path(root)
        kept: list[Path] = []
        for folder, dirs, names in _walk(top):
            here = Path(folder).relative_to(top)
            dirs[:] = [d for d in dirs if not self.ignored(here / d, is_dir=True)]
            kept.extend(Path(folder) / name for name in names if not self.ignored(here / name))
        return kept


def _walk(top: Path) -> Iterable[tuple[str, list[str], list[str]]]:
    for folder, dirs, names in os.walk(top):
        dirs.sort()
        yield folder, dirs, sorted(names)
