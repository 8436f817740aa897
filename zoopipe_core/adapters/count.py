"""The count-only output: writes nothing, counts everything (natively, so a pipe with no Python
stage stays in Rust). Useful to measure reading and validation alone, or to count valid and
invalid records of a file."""

from __future__ import annotations

from zoopipe_core.adapters.base import OutputAdapter
from zoopipe_core.adapters.native_spec import CountSink


class CountOutputAdapter(OutputAdapter):
    """An output that discards records; the pipe's report still counts them (with a schema,
    valid records as successes and invalid ones as errors). Registered as ``"count"``.

    Example:
        >>> import tempfile, os
        >>> from pydantic import BaseModel
        >>> from zoopipe_core import Pipe, CSVInputAdapter
        >>> path = os.path.join(tempfile.mkdtemp(), "n.csv")
        >>> _ = open(path, "w").write("n\\n1\\nx\\n3\\n")
        >>> class Row(BaseModel):
        ...     n: int
        >>> report = Pipe(CSVInputAdapter(path), CountOutputAdapter(), schema_model=Row).run()
        >>> report.total_processed, report.success_count, report.error_count
        (3, 2, 1)
    """

    name = "count"

    @property
    def target_name(self) -> str:
        return "count"

    def native_spec(self) -> CountSink:
        return CountSink()

    def __repr__(self) -> str:
        return "CountOutputAdapter()"
