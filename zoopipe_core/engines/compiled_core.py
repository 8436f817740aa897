"""Which build of zoopipe's compiled core a process runs: its version and build id.

The build id is the GNU build id the linker writes into the ELF file (a hash of the linked
output), read from the file's note sections without loading it; a file without one (another
format, a linker that writes none) is identified by the SHA-256 of its bytes. Driver and workers
compare them before work starts: the same version built twice gives two ids.

Example:
    >>> build = native_build()
    >>> build.version == __import__("zoopipe_core").__version__ and len(build.build_id) >= 16
    True
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
import os
import struct
from pathlib import Path

_NT_GNU_BUILD_ID = 3
_SHT_NOTE = 7


@dataclasses.dataclass(frozen=True)
class NativeBuild:
    """zoopipe's version and the build id of its compiled core (``zoopipe_core._native``);
    ``path`` is where that file is. Empty strings when zoopipe_core is not importable."""

    version: str
    build_id: str
    path: str


def native_build() -> NativeBuild:
    """The zoopipe build this process imports (found, not imported: no native code is loaded)."""
    spec = importlib.util.find_spec("zoopipe_core._native")
    if spec is None or not spec.origin:
        return NativeBuild("", "", "")
    from zoopipe_core import __version__

    stat = os.stat(spec.origin)
    return NativeBuild(__version__, _build_id(spec.origin, stat.st_size, stat.st_mtime_ns), spec.origin)


def host_build() -> tuple[str, NativeBuild]:
    """This machine's name and the zoopipe build this process imports: what a worker answers
    in the start-up handshake (see ``check_builds``)."""
    import socket

    return socket.gethostname(), native_build()


@functools.lru_cache(maxsize=8)
def _build_id(path: str, size: int, mtime_ns: int) -> str:
    """The GNU build id of the file at ``path``, else ``sha256:<hex>`` of its bytes (``size``
    and ``mtime_ns`` key the cache: a rebuilt file is read again)."""
    gnu = gnu_build_id(Path(path))
    if gnu is not None:
        return gnu
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def gnu_build_id(path: Path) -> str | None:
    """The hex GNU build id of an ELF file, or None when it is not ELF or has none.

    Example:
        >>> import sys
        >>> gnu_build_id(Path(sys.executable)) is None or len(gnu_build_id(Path(sys.executable))) >= 16
        True
    """
    with open(path, "rb") as file:
        ident = file.read(16)
        if len(ident) < 16 or ident[:4] != b"\x7fELF" or ident[4] not in (1, 2) or ident[5] not in (1, 2):
            return None
        wide, order = ident[4] == 2, "<" if ident[5] == 1 else ">"
        header = file.read(48 if wide else 36)
        if wide:
            (shoff,) = struct.unpack_from(order + "Q", header, 0x28 - 16)
            shentsize, shnum = struct.unpack_from(order + "HH", header, 0x3A - 16)
        else:
            (shoff,) = struct.unpack_from(order + "I", header, 0x20 - 16)
            shentsize, shnum = struct.unpack_from(order + "HH", header, 0x2E - 16)
        for index in range(shnum):
            file.seek(shoff + index * shentsize)
            section = file.read(shentsize)
            if wide:
                _, kind, _, _, offset, size = struct.unpack_from(order + "IIQQQQ", section)
            else:
                _, kind, _, _, offset, size = struct.unpack_from(order + "IIIIII", section)
            if kind != _SHT_NOTE:
                continue
            file.seek(offset)
            found = _build_id_note(file.read(size), order)
            if found is not None:
                return found
    return None


def _build_id_note(notes: bytes, order: str) -> str | None:
    position = 0
    while position + 12 <= len(notes):
        name_size, desc_size, kind = struct.unpack_from(order + "III", notes, position)
        position += 12
        name = notes[position : position + name_size]
        position += (name_size + 3) & ~3
        desc = notes[position : position + desc_size]
        position += (desc_size + 3) & ~3
        if kind == _NT_GNU_BUILD_ID and name.rstrip(b"\0") == b"GNU":
            return desc.hex()
    return None
