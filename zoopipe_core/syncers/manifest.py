"""What a file or directory holds, as DVC 3 describes it: per-file MD5s and a directory object.

A directory's manifest lists its files (relative POSIX path, MD5, size); its hash is DVC's: the
MD5 of the JSON list ``[{"md5": ..., "relpath": ...}, ...]`` sorted by path, plus ``.dir``. So a
directory zoopipe stores has the same name in a content store as in DVC's cache and remote.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path, PurePosixPath
from typing import Literal

from zoopipe_core.syncers.hashing import HashCache

#: The suffix DVC gives a directory's hash (and its object's name).
DIR_SUFFIX = ".dir"


#: What DVC leaves out of a directory at any depth (its default ignore list), left out here too
#: so a directory's hash stays DVC's. (A repository's .dvcignore patterns are not applied.)
IGNORED_NAMES = frozenset({".git", ".hg", ".dvc"})


def _ignored(relative: Path) -> bool:
    return any(part in IGNORED_NAMES for part in relative.parts)


@dataclasses.dataclass(frozen=True)
class FileEntry:
    """One file of a manifest: its path relative to the root ("" for a single file), MD5, size.

    Example:
        >>> FileEntry("data/a.csv", "b1946ac92492d2347c6235b4d2611184", 6).relpath
        'data/a.csv'
    """

    relpath: str
    md5: str
    size: int


@dataclasses.dataclass(frozen=True)
class Manifest:
    """The content of a file or a directory: its files' MD5s, and one hash for the whole.

    Example:
        >>> import pathlib, tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "data").mkdir(); _ = (folder / "data" / "a.txt").write_text("hello\\n")
        >>> manifest = Manifest.of(folder / "data", HashCache(folder / "md5.sqlite"))
        >>> manifest.kind, manifest.size, manifest.hash.endswith(".dir")
        ('dir', 6, True)
        >>> manifest.files[0]
        FileEntry(relpath='a.txt', md5='b1946ac92492d2347c6235b4d2611184', size=6)
        >>> Manifest.of(folder / "data" / "a.txt", HashCache(folder / "md5.sqlite")).hash
        'b1946ac92492d2347c6235b4d2611184'
    """

    kind: Literal["file", "dir"]
    files: tuple[FileEntry, ...]

    @classmethod
    def of(cls, path: str | os.PathLike[str], cache: HashCache | None = None) -> Manifest:
        """The manifest of a local file or directory (empty directories do not count, as in DVC)."""
        root = Path(path)
        cache = cache if cache is not None else HashCache()
        if root.is_file():
            md5 = cache.md5s([root])[root]
            return cls("file", (FileEntry("", md5, root.stat().st_size),))
        if not root.is_dir():
            raise FileNotFoundError(f"{root} is neither a file nor a directory")
        files = sorted(
            (p for p in root.rglob("*") if p.is_file() and not _ignored(p.relative_to(root))),
            key=lambda p: p.relative_to(root).as_posix(),
        )
        md5s = cache.md5s(files)
        return cls(
            "dir",
            tuple(FileEntry(p.relative_to(root).as_posix(), md5s[p], p.stat().st_size) for p in files),
        )

    @property
    def size(self) -> int:
        return sum(entry.size for entry in self.files)

    def dir_bytes(self) -> bytes:
        """A directory's object as DVC writes it (what its hash is the MD5 of)."""
        listing = [{"md5": entry.md5, "relpath": entry.relpath} for entry in self.files]
        return json.dumps(listing, sort_keys=True).encode("utf-8")

    @property
    def hash(self) -> str:
        if self.kind == "file":
            return self.files[0].md5
        return hashlib.md5(self.dir_bytes(), usedforsecurity=False).hexdigest() + DIR_SUFFIX

    @classmethod
    def from_dir_bytes(cls, data: bytes, sizes: dict[str, int] | None = None) -> Manifest:
        """A directory's manifest read back from its DVC object (sizes are -1 unless given)."""
        listing = json.loads(data)
        sizes = sizes or {}
        return cls(
            "dir",
            tuple(
                FileEntry(item["relpath"], item["md5"], sizes.get(item["relpath"], -1))
                for item in sorted(listing, key=lambda item: item["relpath"])
            ),
        )

    def local_path(self, root: Path, entry: FileEntry) -> Path:
        """Where ``entry`` lives under ``root`` (``root`` itself for a single file)."""
        if self.kind == "file":
            return root
        return root.joinpath(*PurePosixPath(entry.relpath).parts)
