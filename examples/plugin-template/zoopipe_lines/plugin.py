"""The hook implementations zoopipe finds through the entry point ``lines``.

Register by import string: zoopipe imports ``zoopipe_lines.adapters`` only when a ``lines``
adapter is actually used.
"""

from __future__ import annotations

from zoopipe_core import hookimpl


@hookimpl
def zoopipe_register_adapters(register):
    register(
        "lines",
        input="zoopipe_lines.adapters:LinesInputAdapter",
        output="zoopipe_lines.adapters:LinesOutputAdapter",
        suffixes=(".txt",),
    )
