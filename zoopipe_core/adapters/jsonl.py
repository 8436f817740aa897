"""JSON Lines input and output, read and written in Rust. `.gz` and `.zst` by suffix."""

from __future__ import annotations

import os
from typing import Any

from zoopipe_core.adapters.base import InputAdapter, OutputAdapter
from zoopipe_core.storage import compression_for


class JSONInputAdapter(InputAdapter):
    """Read JSON Lines: one object per line. A line that is not a JSON object becomes an
    error record with its line number; blank lines are skipped.

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "in.jsonl")
        >>> _ = open(path, "w").write('{"a": 1}\\n{"a": [2]}\\n')
        >>> from zoopipe_core import Pipe, MemoryOutputAdapter
        >>> out = MemoryOutputAdapter()
        >>> _ = Pipe(JSONInputAdapter(path), out).run(); out.records
        [{'a': 1}, {'a': [2]}]
    """

    name = "jsonl"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)

    @property
    def source_name(self) -> str:
        return self.path

    def native_spec(self) -> dict[str, Any]:
        return {"kind": "jsonl", "url": self.path, "name": self.path, "compression": compression_for(self.path)}

    def __repr__(self) -> str:
        return f"JSONInputAdapter({self.path!r})"


class JSONOutputAdapter(OutputAdapter):
    """Write JSON Lines, fields in record order.

    Example:
        >>> import tempfile, os
        >>> from zoopipe_core import Pipe, PyGeneratorInputAdapter
        >>> path = os.path.join(tempfile.mkdtemp(), "out.jsonl")
        >>> _ = Pipe(PyGeneratorInputAdapter([{"a": 1, "b": "x"}]), JSONOutputAdapter(path)).run()
        >>> open(path).read()
        '{"a":1,"b":"x"}\\n'
    """

    name = "jsonl"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)

    @property
    def target_name(self) -> str:
        return self.path

    def native_spec(self) -> dict[str, Any]:
        return {"kind": "jsonl", "url": self.path, "name": self.path, "compression": compression_for(self.path)}

    def __repr__(self) -> str:
        return f"JSONOutputAdapter({self.path!r})"
