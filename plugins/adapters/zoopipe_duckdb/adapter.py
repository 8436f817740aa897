"""DuckDBOutputAdapter: a pipe's records into a table of a DuckDB database file.

DuckDB lets one process at a time open a database file for writing, and the pipes of a
PipeManager run in separate processes. So a pipe never holds the database while it runs: its
records are staged in a JSON Lines file beside the database, and only on commit does it take an
exclusive lock (``flock`` on the sidecar ``<database>.lock``), open the database, and load the
staged rows into the table in one transaction. Pipes writing different tables of one file, or
appending to the same table, take turns for the few moments each load lasts; a failed run, or a
failed load, leaves the table as it was.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Literal

import duckdb
from pydantic import BaseModel

from zoopipe_core import BatchWriter, OutputAdapter
from zoopipe_core.errors import PipelineError
from zoopipe_duckdb.schema import column_types, encode_json, model_types

logger = logging.getLogger("zoopipe.duckdb")

Mode = Literal["create", "append", "replace"]
MODES = ("create", "append", "replace")


def quote_identifier(name: str) -> str:
    """``name`` as a DuckDB identifier (double-quoted).

    Example:
        >>> quote_identifier('a"b')
        '"a""b"'
    """
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class DuckDBOutputAdapter(OutputAdapter):
    """Write records into the table ``table_name`` of the DuckDB database file ``path``.

    - ``mode="create"`` (default): create the table; it is an error if it already exists.
    - ``mode="append"``: add the rows, creating the table if it does not exist yet. Columns are
      matched by name.
    - ``mode="replace"``: the table holds exactly this run's rows afterwards.

    Column types come from the pipe's ``schema_model`` (``int`` → BIGINT, ``str`` → VARCHAR,
    ``datetime`` → TIMESTAMP, ``list[int]`` → BIGINT[], nested models and dicts → JSON, ...)
    where the written values fit them, and from the values otherwise (a transform may add or
    change columns). The pipe's model is picked up automatically; ``schema_model=`` overrides it.

    Nothing reaches the database until the run has succeeded: rows are staged in a local file
    beside the database and loaded in one transaction on commit, under an exclusive lock on
    ``<path>.lock``, so pipes in separate processes can write tables of the same file. A pipe
    that finds the database busy (another program has it open) retries for ``lock_timeout``
    seconds. ``table_name`` defaults to the file's stem (``analytics.duckdb`` → ``analytics``).

    Example:
        >>> import duckdb, os, tempfile
        >>> from pydantic import BaseModel
        >>> from zoopipe_core import Pipe, PyGeneratorInputAdapter
        >>> class User(BaseModel):
        ...     user_id: int
        ...     username: str
        >>> path = os.path.join(tempfile.mkdtemp(), "analytics.duckdb")
        >>> rows = [{"user_id": "1", "username": "ada"}, {"user_id": "2", "username": "bob"}]
        >>> report = Pipe(PyGeneratorInputAdapter(rows), DuckDBOutputAdapter(path, table_name="users"),
        ...               schema_model=User).run()
        >>> with duckdb.connect(path) as con:
        ...     con.execute("SELECT * FROM users ORDER BY user_id").fetchall()
        ...     con.execute("SELECT data_type FROM information_schema.columns "
        ...                 "WHERE table_name = 'users' ORDER BY ordinal_position").fetchall()
        [(1, 'ada'), (2, 'bob')]
        [('BIGINT',), ('VARCHAR',)]
    """

    name = "duckdb"

    def __init__(
        self,
        path: str | os.PathLike[str],
        table_name: str | None = None,
        mode: Mode = "create",
        *,
        schema_model: type[BaseModel] | None = None,
        lock_timeout: float = 600.0,
    ) -> None:
        text = os.fspath(path)
        if "://" in text and not text.startswith("file://"):
            raise ValueError(
                f"DuckDBOutputAdapter writes a local database file, not {text!r}: give a local "
                "path, and sync the file to remote storage afterwards if needed"
            )
        self.path = os.path.abspath(text[len("file://") :] if text.startswith("file://") else text)
        self.table_name = table_name or Path(self.path).name.split(".")[0]
        if not self.table_name:
            raise ValueError(f"cannot derive a table name from {text!r}; pass table_name=...")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.mode = mode
        if schema_model is not None and not (
            isinstance(schema_model, type) and issubclass(schema_model, BaseModel)
        ):
            raise TypeError(f"schema_model must be a pydantic BaseModel subclass, got {schema_model!r}")
        self.schema_model = schema_model
        self._pipe_model: type[BaseModel] | None = None
        self.lock_timeout = lock_timeout

    @property
    def target_name(self) -> str:
        return f"{self.path}:{self.table_name}"

    @property
    def lock_path(self) -> str:
        """The sidecar file whose ``flock`` serialises writers of this database."""
        return self.path + ".lock"

    def use_pipe_model(self, model: type[BaseModel] | None) -> None:
        """The schema model of the pipe writing here (set by the plugin's ``zoopipe_before_run``)."""
        self._pipe_model = model

    def open_writer(self) -> BatchWriter:
        return DuckDBTableWriter(self, model_types(self.schema_model or self._pipe_model))

    def __repr__(self) -> str:
        return f"DuckDBOutputAdapter({self.path!r}, table_name={self.table_name!r}, mode={self.mode!r})"


class DuckDBTableWriter(BatchWriter):
    """Stages batches in a JSON Lines file; ``commit()`` loads them into the table.

    Obtained from :meth:`DuckDBOutputAdapter.open_writer`.

    Example:
        >>> import duckdb, os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "db.duckdb")
        >>> writer = DuckDBOutputAdapter(path, table_name="t").open_writer()
        >>> writer.write_batch([{"a": 1, "b": "x"}, {"a": 2, "b": None}])
        >>> os.path.exists(path)
        False
        >>> writer.commit()
        >>> with duckdb.connect(path) as con:
        ...     con.execute("SELECT * FROM t ORDER BY a").fetchall()
        [(1, 'x'), (2, None)]
    """

    def __init__(self, adapter: DuckDBOutputAdapter, declared: dict[str, str]) -> None:
        self.adapter = adapter
        self.declared = declared
        directory, name = os.path.split(adapter.path)
        os.makedirs(directory, exist_ok=True)
        self.staging_path = os.path.join(directory, f".{name}.zoopipe-{uuid.uuid4().hex[:12]}.stage.jsonl")
        self._file = open(self.staging_path, "w", encoding="utf-8")  # noqa: SIM115 - closed by commit/abort
        self._columns: dict[str, None] = {}  # insertion-ordered set
        self._seen: dict[str, set[type]] = {}
        self.rows = 0

    def write_batch(self, records: list[dict[str, Any]]) -> None:
        seen, columns = self._seen, self._columns
        for record in records:
            for key, value in record.items():
                types = seen.get(key)
                if types is None:
                    types = seen[key] = set()
                    columns[key] = None
                types.add(type(value))
        dumps = json.dumps
        self._file.write("".join(dumps(r, default=encode_json, ensure_ascii=False) + "\n" for r in records))
        self.rows += len(records)

    def commit(self) -> None:
        self._file.close()
        try:
            types = column_types(list(self._columns), self._seen, self.declared)
            if not types:  # no rows: the model still gives the columns
                types = dict(self.declared)
            with _exclusive(self.adapter) as con:
                self._load(con, types)
        finally:
            _remove(self.staging_path)

    def abort(self) -> None:
        self._file.close()
        _remove(self.staging_path)

    def _load(self, con: Any, types: dict[str, str]) -> None:
        adapter = self.adapter
        table = quote_identifier(adapter.table_name)
        exists = (
            con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = ? AND table_schema = current_schema()",
                [adapter.table_name],
            ).fetchone()[0]
            > 0
        )
        if adapter.mode == "create" and exists:
            raise PipelineError(
                f"table {adapter.table_name!r} already exists in {adapter.path}; nothing was written. "
                "Use mode='append' to add to it or mode='replace' to overwrite it"
            )
        if not types:
            if exists and adapter.mode == "replace":
                con.execute(f"DELETE FROM {table}")
            elif not exists:
                logger.warning(
                    "no rows and no schema_model: table %r was not created in %s",
                    adapter.table_name,
                    adapter.path,
                )
            return
        definition = ", ".join(f"{quote_identifier(c)} {t}" for c, t in types.items())
        if adapter.mode == "replace" or not exists:
            con.execute(f"CREATE OR REPLACE TABLE {table} ({definition})")
        if self.rows:
            # BLOB values are staged as base64 text (JSON has no bytes).
            read_types = {c: ("VARCHAR" if t == "BLOB" else t) for c, t in types.items()}
            struct = (
                "{"
                + ", ".join(f"{_quote_literal(c)}: {_quote_literal(t)}" for c, t in read_types.items())
                + "}"
            )
            select = ", ".join(
                f"from_base64({quote_identifier(c)}) AS {quote_identifier(c)}"
                if t == "BLOB"
                else quote_identifier(c)
                for c, t in types.items()
            )
            con.execute(
                f"INSERT INTO {table} BY NAME SELECT {select} FROM read_json(?, format='newline_delimited', "
                f"columns={struct}, maximum_object_size=1073741824)",
                [self.staging_path],
            )


@contextmanager
def _exclusive(adapter: DuckDBOutputAdapter) -> Iterator[Any]:
    """The database open for writing, by this process alone among zoopipe writers, inside one
    transaction that commits when the block succeeds and rolls back when it raises."""
    deadline = time.monotonic() + adapter.lock_timeout
    with open(adapter.lock_path, "a+") as lock:
        _flock(lock, adapter, deadline)
        try:
            con = _connect(adapter, deadline)
            try:
                con.execute("BEGIN TRANSACTION")
                try:
                    yield con
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
                con.execute("COMMIT")
            except duckdb.Error as exc:
                raise PipelineError(
                    f"could not load the rows into table {adapter.table_name!r} of {adapter.path}: {exc}; "
                    "the table was left as it was"
                ) from exc
            finally:
                con.close()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _flock(lock: Any, adapter: DuckDBOutputAdapter, deadline: float) -> None:
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
        if time.monotonic() > deadline:
            raise PipelineError(
                f"timed out after {adapter.lock_timeout:.0f}s waiting for {adapter.lock_path}, held by "
                f"another writer of {adapter.path}; nothing was written. Raise lock_timeout, or look "
                "for a stuck process"
            )
        time.sleep(0.02)


def _connect(adapter: DuckDBOutputAdapter, deadline: float) -> Any:
    """Open the database, retrying while another program (not a zoopipe writer) holds it."""
    delay = 0.02
    while True:
        try:
            return duckdb.connect(adapter.path)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise PipelineError(f"could not open the DuckDB database {adapter.path}: {exc}") from exc
            if time.monotonic() > deadline:
                raise PipelineError(
                    f"could not open {adapter.path} for writing within {adapter.lock_timeout:.0f}s: another "
                    f"program keeps it open ({exc}); nothing was written. Close it, or raise lock_timeout"
                ) from exc
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


def _remove(path: str) -> None:
    with suppress(FileNotFoundError):
        os.remove(path)


__all__ = ["DuckDBOutputAdapter", "DuckDBTableWriter", "quote_identifier"]
