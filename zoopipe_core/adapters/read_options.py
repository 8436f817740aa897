"""What part of a CSV or JSON Lines file to read: columns, records to skip, a limit, a shard.

Shared by :class:`~zoopipe_core.adapters.csv.CSVInputAdapter` and
:class:`~zoopipe_core.adapters.jsonl.JSONInputAdapter`; the Rust readers apply the options.
The Parquet and Arrow inputs take ``columns``, ``skip_rows`` and ``limit``
(:class:`~zoopipe_core.adapters.tables.TableFileInput`), and are split by rows, not bytes.

- ``columns``: read only these columns, in this order. For CSV a name missing from the header
  is an error before anything is written; every row is still checked for the full shape. For
  JSON Lines other keys are dropped (a record without one of them simply lacks it).
- A schema model does not narrow what is read: error records carry the whole row, and a model
  with ``extra="forbid"`` sees every column (``docs/adapters.md``, *What a schema model reads*).
  A field missing from the CSV header is not an error here: validation reports it on each
  record, or fills in the field's default.
- ``skip_rows``: records (not lines; after a CSV header) to drop before reading; they are not
  counted. ``limit``: read at most this many records (counting records that fail to parse).
- ``byte_range=(start, end)`` and ``line_offset``: read one shard of the file, as cut by
  ``zoopipe_core._native.split_points(path, kind, n, delimiter=",", quotechar='"',
  has_header=True) -> [(start, end, line_offset), ...]``. A CSV header is still read from the
  start of the file; error records keep the true line numbers of the file. ``split(n)`` returns
  the shards as adapters. ``skip_rows`` and ``limit`` apply within a shard.
- A shard of a file on a URL (:mod:`zoopipe_core.adapters.ranged_split`) streams only its range.
  The splitter sets ``ends_at_cut`` (the range ends at a cut chosen from a small window: a record
  open there fails the shard) and, on every shard but the first, ``lines_from_range_start``:
  lines count from the range's start and error records name the range
  (``s3://b/data.csv [bytes 1048576..2097152]``).
"""

from __future__ import annotations

from collections.abc import Sequence

from zoopipe_core.adapters.native_spec import ReadSpec


class ReadOptions:
    """Mixin holding the read options of a file input adapter (see the module docstring).

    Example:
        >>> options = ReadOptions()
        >>> options._set_read_options(columns=["a"], skip_rows=2, limit=10, byte_range=None, line_offset=0)
        >>> options._read_spec()
        ReadSpec(columns=['a'], skip_rows=2, limit=10, byte_range=None, line_offset=0)
    """

    columns: list[str] | None = None
    skip_rows: int = 0
    limit: int | None = None
    byte_range: tuple[int, int] | None = None
    line_offset: int = 0
    ends_at_cut: bool = False
    lines_from_range_start: bool = False

    def _source_label(self, path: str) -> str:
        """What error records call the source: ``path``, with the byte range of a shard whose
        lines count from its range's start.

        Example:
            >>> options = ReadOptions()
            >>> options.byte_range, options.lines_from_range_start = (10, 20), True
            >>> options._source_label("s3://b/data.csv")
            's3://b/data.csv [bytes 10..20]'
        """
        if self.lines_from_range_start and self.byte_range is not None:
            return f"{path} [bytes {self.byte_range[0]}..{self.byte_range[1]}]"
        return path

    def _set_read_options(
        self,
        *,
        columns: Sequence[str] | None,
        skip_rows: int,
        limit: int | None,
        byte_range: tuple[int, int] | None,
        line_offset: int,
    ) -> None:
        if isinstance(columns, str):
            raise TypeError(
                f"columns must be a list of names, got the string {columns!r}; write columns=[{columns!r}]"
            )
        self.columns = list(columns) if columns is not None else None
        if not isinstance(skip_rows, int) or skip_rows < 0:
            raise ValueError(f"skip_rows must be an int >= 0, got {skip_rows!r}")
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise ValueError(f"limit must be None or an int >= 0, got {limit!r}")
        if byte_range is not None:
            start, end = byte_range
            if not (isinstance(start, int) and isinstance(end, int) and 0 <= start <= end):
                raise ValueError(
                    f"byte_range must be (start, end) with 0 <= start <= end, got {byte_range!r}"
                )
            byte_range = (start, end)
        if not isinstance(line_offset, int) or line_offset < 0:
            raise ValueError(f"line_offset must be an int >= 0, got {line_offset!r}")
        self.skip_rows, self.limit = skip_rows, limit
        self.byte_range, self.line_offset = byte_range, line_offset

    def _read_spec(self) -> ReadSpec:
        return ReadSpec(
            columns=self.columns,
            skip_rows=self.skip_rows,
            limit=self.limit,
            byte_range=self.byte_range,
            line_offset=self.line_offset,
        )
