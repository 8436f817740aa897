"""Merge local shard files by appending them to the first one, in the kernel.

Copying every part into a new file costs a full pass over the output in Python; renaming the
first part into place and appending the others with ``os.copy_file_range`` copies only the
later parts, without their bytes crossing into user space. The result is published atomically
(it appears under its name only when complete) and, if appending fails, the first part is put
back as it was, so a retried merge finds every part.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Sequence
from typing import IO

from zoopipe_core.adapters.storage import PendingOutput

_CHUNK = 1 << 20


def append_parts(target_url: str, parts: Sequence[str], skips: Sequence[int]) -> None:
    """Publish ``target_url`` as ``parts[0]`` followed by each later part from byte ``skips[i]``.

    ``parts`` are local paths; ``parts[0]`` is moved (not copied) and the later parts are left
    for the caller to remove.

    Example:
        >>> import tempfile, os
        >>> folder = tempfile.mkdtemp()
        >>> paths = [os.path.join(folder, name) for name in ("a.csv", "b.csv")]
        >>> for path, body in zip(paths, (b"h\\n1\\n", b"h\\n2\\n")): _ = open(path, "wb").write(body)
        >>> append_parts(os.path.join(folder, "all.csv"), paths, [0, 2])
        >>> open(os.path.join(folder, "all.csv"), "rb").read()
        b'h\\n1\\n2\\n'
    """
    first, rest = parts[0], list(zip(parts[1:], skips[1:], strict=True))
    pending = PendingOutput(target_url)
    temp = pending.location().path
    assert temp is not None, "a local output is written to a local temporary path"
    first_size = os.path.getsize(first)
    os.replace(first, temp)
    try:
        with open(temp, "r+b") as out:
            for path, skip in rest:
                _append(out, path, skip)
    except BaseException:
        # Put the first part back as it was, so nothing is lost and a retry can merge again.
        os.truncate(temp, first_size)
        os.replace(temp, first)
        raise
    pending.commit()


def _append(out: IO[bytes], path: str, offset: int) -> None:
    """Append the file at ``path`` from byte ``offset`` to the end of ``out``."""
    with open(path, "rb") as part:
        size = os.fstat(part.fileno()).st_size
        position = out.seek(0, os.SEEK_END)
        copy_file_range = getattr(os, "copy_file_range", None)
        if copy_file_range is not None and offset < size:
            _reserve(out.fileno(), position, size - offset)
        while offset < size and copy_file_range is not None:
            try:
                copied = copy_file_range(part.fileno(), out.fileno(), size - offset, offset, position)
            except OSError:
                # The file systems cannot copy in the kernel (EXDEV, ENOSYS...): the same bytes
                # are copied below through user space.
                break
            if copied == 0:
                break
            offset, position = offset + copied, position + copied
        if offset < size:
            part.seek(offset)
            out.seek(position)
            shutil.copyfileobj(part, out, _CHUNK)


def _reserve(fd: int, position: int, length: int) -> None:
    """Allocate the blocks about to be written in one call: the kernel then copies into
    allocated space instead of reserving it page by page (a third faster on ext4). Only a hint:
    file systems without fallocate are left to allocate as they write."""
    with contextlib.suppress(OSError):
        os.posix_fallocate(fd, position, length)
