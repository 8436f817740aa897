"""Which files of a project's code ship to workers: ignore files, matched by git's rules.

The one place an engine that uploads code decides what to leave out. Patterns are read from the
``WorkerEnvironment.ignore_file`` (``.rayignore``) by :func:`read_ignore_file` and matched with
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

import os
from collections.abc import Iterable
from pathlib import Path

import pathspec


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
    if not path or not Path(path).is_file():
        return []
    lines = (line.strip() for line in Path(path).read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


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

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        self.patterns = list(patterns)
        self._spec = pathspec.GitIgnoreSpec.from_lines(self.patterns)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str] | None) -> IgnoreRules:
        """The rules of an ignore file (see :func:`read_ignore_file`); none if it does not exist."""
        return cls(read_ignore_file(path))

    def ignored(self, relative: str | os.PathLike[str], is_dir: bool = False) -> bool:
        """Whether ``relative`` (a path relative to the shipped directory) is left out."""
        text = os.fspath(relative).replace(os.sep, "/").strip("/")
        return self._spec.match_file(f"{text}/" if is_dir else text)

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
