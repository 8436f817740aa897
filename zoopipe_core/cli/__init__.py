"""The ``zoopipe`` command line: ``zoopipe run`` (``run``) and ``zoopipe plugins`` (``main``).

Example:
    >>> from zoopipe_core.cli import main
    >>> callable(main)
    True
"""

from __future__ import annotations

from zoopipe_core.cli.main import main

__all__ = ["main"]
