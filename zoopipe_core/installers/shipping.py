"""The files of a project's code that ship to workers, what they weigh, and why one ships or not.

Every engine that uploads code takes its file list from :func:`code_files`, so what ``zoopipe env``
shows is what ships. A code path is a package directory (shipped under its name), a plain
directory (its contents shipped, as Ray's ``working_dir``) or a ``.py`` module. Patterns are
matched against paths relative to the project's root when the code is inside the project (as a
``.rayignore`` at the root is written), else relative to the directory that goes on the workers'
import path.

Example:
    >>> import pathlib, tempfile
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name, size in (("shop/__init__.py", 10), ("shop/data/big.bin", 5000), ("shop/__pycache__/x.pyc", 9)):
    ...     (root / name).parent.mkdir(parents=True, exist_ok=True)
    ...     _ = (root / name).write_bytes(b"x" * size)
    >>> rules = IgnoreRules.for_shipping(None)
    >>> [f.name for f in code_files([root / "shop"], rules, root)]
    ['shop/__init__.py', 'shop/data/big.bin']
    >>> summary = Shipment.of(code_files([root / "shop"], rules, root))
    >>> summary.files, summary.bytes, summary.largest[0]
    (2, 5010, ('shop/data/big.bin', 5000))
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from zoopipe_core.installers.ignore import Decision, IgnoreRules

#: How many of the largest files a shipment summary lists.
LARGEST_SHOWN = 10


@dataclasses.dataclass(frozen=True)
class CodeFile:
    """One file that ships: ``source`` on this machine, ``name`` inside its code path's archive
    (relative to the directory that goes on the workers' import path), ``code_path`` the code
    path it belongs to, and its size."""

    source: Path
    name: str
    code_path: Path
    bytes: int


@dataclasses.dataclass(frozen=True)
class Shipment:
    """What would ship: the file count, the total bytes and the largest files (name, bytes).

    Example:
        >>> Shipment(2, 30, [("a.py", 20), ("b.py", 10)]).to_json()["largest"][0]
        {'path': 'a.py', 'bytes': 20}
    """

    files: int
    bytes: int
    largest: list[tuple[str, int]]

    @classmethod
    def of(cls, files: Sequence[CodeFile], top: int = LARGEST_SHOWN) -> Shipment:
        ranked = sorted(files, key=lambda f: (-f.bytes, f.name))[:top]
        return cls(len(files), sum(f.bytes for f in files), [(f.name, f.bytes) for f in ranked])

    def to_json(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "bytes": self.bytes,
            "largest": [{"path": name, "bytes": size} for name, size in self.largest],
        }


def import_root(code_path: Path) -> Path:
    """The directory that goes on the workers' import path for ``code_path``: a package's or a
    module's parent, or a plain directory itself."""
    if code_path.is_file() or (code_path / "__init__.py").is_file():
        return code_path.parent
    return code_path


def code_files(
    code_paths: Iterable[Path], rules: IgnoreRules, project_root: Path | None = None
) -> list[CodeFile]:
    """The files of ``code_paths`` that ship under ``rules``, each folder's files by name then its
    subfolders; folders that are left out are not entered."""
    shipped: list[CodeFile] = []
    for code_path in code_paths:
        code_path = Path(code_path)
        root = import_root(code_path)
        for path, kept in _walk_code(code_path, rules, project_root):
            if kept and path.is_file():
                shipped.append(
                    CodeFile(path, path.relative_to(root).as_posix(), code_path, path.stat().st_size)
                )
    return shipped


def left_out(code_path: Path, rules: IgnoreRules, project_root: Path | None = None) -> list[Path]:
    """The files and folders of ``code_path`` that ``rules`` leave out (a folder's contents are
    not listed): with :func:`code_files`, everything under it.

    Example:
        >>> import pathlib, tempfile
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> for name in ("pkg/__init__.py", "pkg/__pycache__/a.pyc", "pkg/notes.log"):
        ...     (root / name).parent.mkdir(parents=True, exist_ok=True); _ = (root / name).write_text("")
        >>> [p.name for p in left_out(root / "pkg", IgnoreRules.for_shipping(None) , root)]
        ['__pycache__']
    """
    return [path for path, kept in _walk_code(Path(code_path), rules, project_root) if not kept]


def _walk_code(code_path: Path, rules: IgnoreRules, project_root: Path | None) -> Iterable[tuple[Path, bool]]:
    """Every file and folder under ``code_path`` with whether it ships; a folder left out is
    yielded but not entered."""
    base = _match_base(code_path, import_root(code_path), project_root)
    if code_path.is_file():
        yield code_path, not rules.ignored(code_path.relative_to(base))
        return
    for folder, dirs, names in os.walk(code_path):
        dirs.sort()
        here = Path(folder)
        for name in sorted(names):
            full = here / name
            yield full, not rules.ignored(full.relative_to(base))
        entered = []
        for name in dirs:
            kept = not rules.ignored((here / name).relative_to(base), is_dir=True)
            if kept:
                entered.append(name)
            else:
                yield here / name, False
        dirs[:] = entered


def explain_file(
    file: str | os.PathLike[str],
    code_paths: Iterable[Path],
    rules: IgnoreRules,
    project_root: Path | None = None,
) -> tuple[bool, str]:
    """Whether ``file`` ships, and a sentence saying why: the pattern and where it is written,
    or that no code path holds the file.

    Example:
        >>> import pathlib, tempfile
        >>> root = pathlib.Path(tempfile.mkdtemp()); (root / "shop").mkdir()
        >>> _ = (root / "shop" / "__init__.py").write_text("")
        >>> explain_file(root / "shop" / "__init__.py", [root / "shop"], IgnoreRules(), root)[0]
        True
    """
    target = Path(file).expanduser().resolve()
    for code_path in code_paths:
        code_path = Path(code_path).resolve()
        if target != code_path and code_path not in target.parents:
            continue
        base = _match_base(code_path, import_root(code_path), project_root)
        relative = target.relative_to(base).as_posix()
        decision: Decision = rules.decide(relative, is_dir=target.is_dir())
        where = f"{decision.pattern!r} ({decision.origin})" if decision.origin else repr(decision.pattern)
        if decision.ignored:
            return False, f"{relative} does not ship: the pattern {where} leaves it out"
        if decision.pattern is not None:
            return True, f"{relative} ships: the pattern {where} brings it back"
        return True, f"{relative} ships with the code path {code_path}: no ignore pattern matches it"
    shown = ", ".join(str(p) for p in code_paths) or "none"
    return False, f"{target} does not ship: it is in none of the code paths ({shown})"


def _match_base(code_path: Path, root: Path, project_root: Path | None) -> Path:
    if project_root is not None and (code_path == project_root or project_root in code_path.parents):
        return project_root
    return root
