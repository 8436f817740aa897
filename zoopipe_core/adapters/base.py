"""The two adapter contracts: where records come from and where they go.

An adapter either describes itself to the Rust executor (``native_spec``), which then reads or
writes without the GIL, or implements the Python side (``iter_batches`` / ``open_writer``), which
the executor calls under the GIL once per batch. Third-party adapters usually do the latter.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from typing import Any, ClassVar

from zoopipe_core.adapters import merge
from zoopipe_core.adapters.native_spec import SinkSpec, SourceSpec


class InputAdapter(abc.ABC):  # noqa: B024 - an ABC for isinstance; either method may be implemented
    """Where records come from.

    Subclasses set ``name`` (the registered name) and implement either ``native_spec`` or
    ``iter_batches``.

    Example:
        >>> class Numbers(InputAdapter):
        ...     name = "numbers"
        ...     def iter_batches(self, batch_size):
        ...         yield [{"n": i} for i in range(3)]
        >>> [r["n"] for batch in Numbers().iter_batches(10) for r in batch]
        [0, 1, 2]
    """

    name: ClassVar[str] = ""

    @property
    def source_name(self) -> str:
        """What error records name as their source (a path, URL or description)."""
        return self.name or type(self).__name__

    def native_spec(self) -> SourceSpec | None:
        """What the Rust reader reads (a spec of :mod:`zoopipe_core.adapters.native_spec`), or
        None to be read through Python."""
        return None

    def iter_batches(self, batch_size: int) -> Iterator[list[dict[str, Any]]]:
        """Yield lists of records (dicts). Called only when ``native_spec`` returns None."""
        raise TypeError(
            f"input adapter {type(self).__name__} implements neither native_spec() nor "
            "iter_batches(); implement one of them"
        )

    def split(self, workers: int) -> list[InputAdapter]:
        """This input as at most ``workers`` independent shards that together hold every record
        once (``PipeManager.parallelize_pipe``). Raises ShardingError saying why it cannot."""
        from zoopipe_core.errors import ShardingError

        raise ShardingError(
            f"{type(self).__name__} cannot be split into shards: it does not implement "
            "split(workers). Give PipeManager one pipe per source instead, or implement split()"
        )


class BatchWriter(abc.ABC):
    """An open output: receives batches, then either commits (publishes) or aborts."""

    @abc.abstractmethod
    def write_batch(self, records: list[dict[str, Any]]) -> None:
        """Write one batch of records."""

    @abc.abstractmethod
    def commit(self) -> None:
        """Publish everything written. Called once, only after a successful run."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Discard everything written. Nothing may remain under the final name."""


class OutputAdapter(abc.ABC):  # noqa: B024 - an ABC for isinstance; either method may be implemented
    """Where records go.

    Subclasses set ``name`` and implement either ``native_spec`` or ``open_writer``.

    Example:
        >>> class Printer(OutputAdapter):
        ...     name = "printer"
        ...     def open_writer(self):
        ...         class W(BatchWriter):
        ...             def write_batch(self, records): print(records)
        ...             def commit(self): pass
        ...             def abort(self): pass
        ...         return W()
        >>> w = Printer().open_writer(); w.write_batch([{"a": 1}]); w.commit()
        [{'a': 1}]
    """

    name: ClassVar[str] = ""

    @property
    def target_name(self) -> str:
        """A path, URL or description of where the records go."""
        return self.name or type(self).__name__

    def native_spec(self) -> SinkSpec | None:
        """What the Rust writer writes (a spec of :mod:`zoopipe_core.adapters.native_spec`), or
        None to be written through Python."""
        return None

    @property
    def merge_format(self) -> str | None:
        """The file format whose merger joins this output's shard parts
        (:func:`zoopipe_core.adapters.merge.register_merger`): by default the kind of its native
        spec (csv, jsonl, json, parquet, arrow). An adapter writing its own format names it here."""
        spec = self.native_spec()
        return spec.kind if spec is not None else None

    def open_writer(self) -> BatchWriter:
        """Open the output. Called only when ``native_spec`` returns None."""
        raise TypeError(
            f"output adapter {type(self).__name__} implements neither native_spec() nor "
            "open_writer(); implement one of them"
        )

    def run_ended(self, report: Any) -> None:  # noqa: B027 - an optional hook, nothing by default
        """Called once a run that used this output ended (``report.status`` says how), whether
        or not its writer was opened: a run can fail before it opens its outputs. By default
        nothing; an output that someone waits on (a stream the caller iterates) ends it here."""

    def shard(self, index: int) -> OutputAdapter:
        """Where shard ``index`` of a parallel run writes: by default the same output with
        ``.part-NNNNN`` in its file name. Raises ShardingError for an output with no file."""
        return merge.shard_output(self, index)

    def merge_parts(self, parts: list[OutputAdapter]) -> None:
        """Merge the outputs of ``parts`` (from :meth:`shard`) into this output, publish it
        atomically, and remove the parts. By default for the formats that register a merger
        (csv, jsonl, json, parquet, arrow: :func:`zoopipe_core.adapters.merge.register_merger`)."""
        merge.merge_outputs(self, parts)

    def check_mergeable(self) -> None:
        """Raise ShardingError now, before any shard runs, when the parts of this output could not
        be merged: no merger for its format and no ``merge_parts`` of its own."""
        merge.check_mergeable(self, own_merge=type(self).merge_parts is not OutputAdapter.merge_parts)
