"""A fixture project for the environment-shipping tests of every cluster engine: a package the
workers cannot import unless it ships, a requirement, and a large data file its ``.rayignore``
leaves out.

Example:
    >>> import pathlib, tempfile
    >>> root = fixture_project(pathlib.Path(tempfile.mkdtemp()) / "shop")
    >>> sorted(p.name for p in root.iterdir())
    ['.rayignore', 'requirements.txt', 'zoopipe_fixture_shop']
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def fixture_project(root: Path, requirements: str = "pluggy>=1\n") -> Path:
    """A project whose package the workers cannot import unless it ships, with a large data file
    its .rayignore leaves out."""
    package = root / "zoopipe_fixture_shop"
    (package / "data").mkdir(parents=True)
    (root / "requirements.txt").write_text(requirements)
    (root / ".rayignore").write_text("# data stays home\nzoopipe_fixture_shop/data/\n")
    (package / "__init__.py").write_text("VALUE = 42\n")
    (package / "data" / "big.bin").write_bytes(b"\0" * 3 * 1024 * 1024)
    return root


def shop_probe() -> Callable[[], tuple[int, bool, bool]]:
    """A function reporting (the package's value, whether its data file shipped, whether the
    native module loads); a closure, so engines ship it by value (workers cannot import the tests)."""

    def shop_on_worker() -> tuple[int, bool, bool]:
        import importlib
        import os
        import sys

        sys.modules.pop("zoopipe_fixture_shop", None)  # a reused worker: import what ships now
        importlib.invalidate_caches()
        shop = importlib.import_module("zoopipe_fixture_shop")
        data = os.path.join(os.path.dirname(str(shop.__file__)), "data", "big.bin")
        native = importlib.import_module("zoopipe_core._native")
        return shop.VALUE, os.path.exists(data), native is not None

    return shop_on_worker
