"""Functions the offload contract runs on workers (importable, so engines ship them by name).

Example:
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "in").mkdir(); _ = (folder / "in" / "a.txt").write_text("x")
    >>> _ = (folder / "out").mkdir()
    >>> copy_tree(str(folder / "in"), str(folder / "out"))
    1
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any


def copy_tree(source: str, target: str, suffix: str = "") -> int:
    """Copy every file of ``source`` (a file or a directory) into the directory ``target``,
    appending ``suffix`` to each file's content; return the number of files."""
    root = Path(source)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for file in files:
        relative = file.name if root.is_file() else file.relative_to(root).as_posix()
        destination = Path(target, relative)
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(file.read_bytes() + suffix.encode())
    return len(files)


def merge_two(first: str, second: str, out: str) -> list[str]:
    """Write both inputs' contents into ``out``: proves two deps with one base name stay apart."""
    names = []
    for index, source in enumerate((first, second)):
        copy_tree(source, str(Path(out, str(index))))
        names.append(Path(source).name)
    return names


def train(config: Any) -> dict[str, Any]:
    """A Hydra-style task: reads ``config.data.path``, writes ``config.training.output_dir``."""
    data = Path(config["data"]["path"])
    out = Path(config["training"]["output_dir"])
    (out / "model.txt").write_text(f"trained on {sorted(p.name for p in data.iterdir())} lr={config['lr']}")
    return {"data": str(data), "out": str(out)}


def write_half_then_fail(data_dir: str, out_dir: str, scratch_log: str) -> None:
    """Writes one output file, records where it ran, then raises."""
    Path(out_dir, "half.txt").write_text("half")
    Path(scratch_log).write_text(str(Path(out_dir).parent.parent.parent))
    raise KeyError(f"no column 'price' in {Path(data_dir).name}")


def record_paths(data_dir: str, out_dir: str, log: str, delay: float = 0.0) -> str:
    """Append the worker paths it got to ``log``, wait ``delay``, copy data into out_dir."""
    with open(log, "a") as file:
        file.write(f"{data_dir} {out_dir}\n")
    time.sleep(delay)
    copy_tree(data_dir, out_dir)
    return out_dir


def no_paths(x: int, y: int = 2) -> int:
    """A function with no paths at all."""
    return x**y


def write_file_output(out_path: str) -> None:
    """Replaces the empty directory it is given with a single file."""
    os.rmdir(out_path)
    Path(out_path).write_text("a single file")


def overwrite_input(data_file: str) -> str:
    """Writes into the input file it was given (which must not change the cached copy)."""
    try:
        Path(data_file).write_text("changed by the function")
    except PermissionError:
        return "read-only"
    return "written"


def read_file(data_file: str) -> str:
    return Path(data_file).read_text()


def remove_dir(path: str) -> None:
    shutil.rmtree(path)
