"""DuckDBOutputAdapter: rows into a table of a DuckDB file, typed by the schema model, loaded in
one transaction on commit; pipes in separate processes share one database file safely."""

from __future__ import annotations

import datetime
import decimal
import doctest
import enum
import multiprocessing
import os
import subprocess
import sys
import textwrap
import time
import uuid

import duckdb
import pytest
from conftest import assert_completed
from pydantic import BaseModel, Field
from zoopipe_duckdb import DuckDBOutputAdapter

from zoopipe_core import (
    MemoryOutputAdapter,
    Pipe,
    PipelineError,
    PyGeneratorInputAdapter,
    SingleThreadExecutor,
    plugins,
)


def query(path, sql):
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def column_types(path, table):
    return dict(
        query(
            path,
            f"SELECT column_name, data_type FROM information_schema.columns WHERE table_name = '{table}' "
            "ORDER BY ordinal_position",
        )
    )


def tables(path):
    if not os.path.exists(path):
        return []
    return [name for (name,) in query(path, "SELECT table_name FROM information_schema.tables ORDER BY 1")]


def leftovers(directory):
    return [name for name in os.listdir(directory) if ".zoopipe-" in name]


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Address(BaseModel):
    city: str


class Order(BaseModel):
    id: int
    customer: str
    total: float
    paid: bool
    day: datetime.date
    at: datetime.datetime
    note: str | None = None
    tags: list[str] = []
    counts: list[int] = []
    price: decimal.Decimal = Field(max_digits=10, decimal_places=2)
    key: uuid.UUID
    color: Color
    address: Address
    extra: dict = {}


def order(i):
    return {
        "id": str(i),
        "customer": f"c{i}",
        "total": f"{i}.5",
        "paid": "true" if i % 2 else "false",
        "day": "2024-01-02",
        "at": "2024-01-02T03:04:05",
        "note": None if i % 3 else "n",
        "tags": ["a", "b"],
        "counts": [i, i + 1],
        "price": "12.34",
        "key": str(uuid.UUID(int=i)),
        "color": "red",
        "address": {"city": "Oslo"},
        "extra": {"k": [i]},
    }


def test_types_follow_the_schema_model(tmp_path):
    db = tmp_path / "shop.duckdb"
    report = Pipe(
        PyGeneratorInputAdapter([order(i) for i in range(1, 101)]),
        DuckDBOutputAdapter(db, table_name="orders"),
        schema_model=Order,
    ).run()
    assert_completed(report, read=100, written=100, errors=0)
    assert column_types(db, "orders") == {
        "id": "BIGINT",
        "customer": "VARCHAR",
        "total": "DOUBLE",
        "paid": "BOOLEAN",
        "day": "DATE",
        "at": "TIMESTAMP",
        "note": "VARCHAR",
        "tags": "VARCHAR[]",
        "counts": "BIGINT[]",
        "price": "DECIMAL(10,2)",
        "key": "UUID",
        "color": "VARCHAR",
        "address": "JSON",
        "extra": "JSON",
    }
    first = query(
        db,
        'SELECT id, customer, total, paid, day, "at", note, tags, counts, price, "key", color, '
        "address->>'city', extra FROM orders WHERE id = 3",
    )
    assert first == [
        (
            3,
            "c3",
            3.5,
            True,
            datetime.date(2024, 1, 2),
            datetime.datetime(2024, 1, 2, 3, 4, 5),
            "n",
            ["a", "b"],
            [3, 4],
            decimal.Decimal("12.34"),
            uuid.UUID(int=3),
            "red",
            "Oslo",
            '{"k":[3]}',
        )
    ]
    assert query(db, "SELECT count(*), sum(id) FROM orders") == [(100, 5050)]
    assert leftovers(tmp_path) == []


def test_types_from_the_data_without_a_model(tmp_path):
    db = tmp_path / "raw.duckdb"
    records = [
        {"n": 1, "x": 1.5, "s": "a", "b": True, "mixed": 1, "blob": b"\x00\x01", "nothing": None},
        {"n": 2, "x": 2, "s": None, "b": False, "mixed": "two", "blob": b"hi", "nothing": None, "late": 7},
    ]
    Pipe(PyGeneratorInputAdapter(records), DuckDBOutputAdapter(db, table_name="raw")).run()
    assert column_types(db, "raw") == {
        "n": "BIGINT",
        "x": "DOUBLE",
        "s": "VARCHAR",
        "b": "BOOLEAN",
        "mixed": "JSON",
        "blob": "BLOB",
        "nothing": "VARCHAR",
        "late": "BIGINT",
    }
    assert query(db, "SELECT n, x, s, b, mixed, blob, nothing, late FROM raw ORDER BY n") == [
        (1, 1.5, "a", True, "1", b"\x00\x01", None, None),
        (2, 2.0, None, False, '"two"', b"hi", None, 7),
    ]


def test_a_transform_that_changes_a_column_keeps_its_values(tmp_path):
    """The model says `id: int`, but the transform writes strings: the column follows the data."""

    class Item(BaseModel):
        id: int

    db = tmp_path / "t.duckdb"
    relabel = lambda rs: [{"id": f"ID-{r['id']}", "added": r["id"] * 2} for r in rs]  # noqa: E731
    Pipe(
        PyGeneratorInputAdapter([{"id": "1"}, {"id": "2"}]),
        DuckDBOutputAdapter(db, table_name="items"),
        schema_model=Item,
        post_validation=[relabel],
    ).run()
    assert column_types(db, "items") == {"id": "VARCHAR", "added": "BIGINT"}
    assert query(db, "SELECT * FROM items ORDER BY added") == [("ID-1", 2), ("ID-2", 4)]


def test_modes_create_append_replace(tmp_path):
    db = tmp_path / "modes.duckdb"

    def run(values, mode):
        return Pipe(
            PyGeneratorInputAdapter([{"v": v} for v in values]),
            DuckDBOutputAdapter(db, table_name="t", mode=mode),
        ).run()

    run([1, 2], "create")
    with pytest.raises(PipelineError, match=r"table 't' already exists .* mode='append'"):
        run([3], "create")
    assert query(db, "SELECT v FROM t ORDER BY v") == [(1,), (2,)]
    run([3], "append")
    assert query(db, "SELECT v FROM t ORDER BY v") == [(1,), (2,), (3,)]
    run([9], "replace")
    assert query(db, "SELECT v FROM t") == [(9,)]
    run([], "replace")
    assert query(db, "SELECT count(*) FROM t") == [(0,)]
    run([5], "append")
    assert query(db, "SELECT v FROM t") == [(5,)]
    assert leftovers(tmp_path) == []


def test_append_creates_a_missing_table_and_an_empty_run_with_a_model_creates_it_empty(tmp_path):
    class Item(BaseModel):
        id: int
        name: str

    db = tmp_path / "a.duckdb"
    Pipe(PyGeneratorInputAdapter([]), DuckDBOutputAdapter(db, table_name="items"), schema_model=Item).run()
    assert column_types(db, "items") == {"id": "BIGINT", "name": "VARCHAR"}
    assert query(db, "SELECT count(*) FROM items") == [(0,)]
    Pipe(PyGeneratorInputAdapter([{"id": 1}]), DuckDBOutputAdapter(db, table_name="new", mode="append")).run()
    assert query(db, "SELECT * FROM new") == [(1,)]


class Crash(BaseException):
    pass


SMALL_BATCHES = SingleThreadExecutor(batch_size=500)  # 10,000 rows: the crash comes halfway


def crash_after(n):
    calls = []

    def transform(records):
        calls.append(1)
        if len(calls) > n:
            raise Crash("the transform failed halfway")
        return records

    return transform


def test_a_failed_run_creates_no_table(tmp_path):
    db = tmp_path / "f.duckdb"
    pipe = Pipe(
        PyGeneratorInputAdapter({"i": i} for i in range(10_000)),
        DuckDBOutputAdapter(db, table_name="t"),
        post_validation=[crash_after(3)],
        executor=SMALL_BATCHES,
    )
    with pytest.raises(PipelineError, match="Crash"):
        pipe.run()
    assert tables(db) == []
    assert leftovers(tmp_path) == []


def test_a_failed_run_leaves_an_existing_table_unchanged(tmp_path):
    db = tmp_path / "f.duckdb"
    Pipe(PyGeneratorInputAdapter([{"i": -1}]), DuckDBOutputAdapter(db, table_name="t")).run()
    for mode in ("append", "replace"):
        pipe = Pipe(
            PyGeneratorInputAdapter({"i": i} for i in range(10_000)),
            DuckDBOutputAdapter(db, table_name="t", mode=mode),
            post_validation=[crash_after(3)],
            executor=SMALL_BATCHES,
        )
        with pytest.raises(PipelineError):
            pipe.run()
        assert query(db, "SELECT i FROM t") == [(-1,)]
    assert leftovers(tmp_path) == []


def test_a_failed_load_rolls_back(tmp_path):
    """Appending a column the table does not have fails inside the transaction: nothing changes."""
    db = tmp_path / "f.duckdb"
    Pipe(PyGeneratorInputAdapter([{"i": 1}]), DuckDBOutputAdapter(db, table_name="t")).run()
    with pytest.raises(PipelineError, match=r"(?s)could not load the rows into table 't'.*left as it was"):
        Pipe(
            PyGeneratorInputAdapter([{"i": 2, "other": 3}]),
            DuckDBOutputAdapter(db, table_name="t", mode="append"),
        ).run()
    assert query(db, "SELECT * FROM t") == [(1,)]
    assert leftovers(tmp_path) == []


def test_by_suffix_and_as_the_error_output(tmp_path):
    class Item(BaseModel):
        id: int

    db = tmp_path / "events.duckdb"
    report = Pipe(
        PyGeneratorInputAdapter([{"id": "1"}, {"id": "x"}]),
        str(db),
        error_output_adapter=DuckDBOutputAdapter(db, table_name="rejects"),
        schema_model=Item,
    ).run()
    assert_completed(report, read=2, written=1, errors=1)
    assert tables(db) == ["events", "rejects"]
    assert query(db, "SELECT id FROM events") == [(1,)]
    assert query(db, "SELECT stage, line, record->>'id' FROM rejects") == [("validation", 2, "x")]


def test_remote_urls_and_bad_modes_are_rejected():
    with pytest.raises(ValueError, match="local database file"):
        DuckDBOutputAdapter("s3://bucket/db.duckdb", table_name="t")
    with pytest.raises(ValueError, match="mode must be one of create, append, replace"):
        DuckDBOutputAdapter("x.duckdb", table_name="t", mode="upsert")


def test_waits_for_another_program_holding_the_database(tmp_path):
    """A process that keeps the database open blocks writers; the pipe retries until it is free."""
    db = tmp_path / "busy.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        import duckdb, sys, time
        con = duckdb.connect({str(db)!r})
        con.execute("CREATE TABLE other (x INTEGER)")
        print("holding", flush=True)
        time.sleep(1.5)
        con.close()
    """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        started = time.monotonic()
        Pipe(
            PyGeneratorInputAdapter([{"v": 1}]), DuckDBOutputAdapter(db, table_name="t", lock_timeout=60)
        ).run()
        assert time.monotonic() - started > 0.5
    finally:
        holder.wait(30)
    assert tables(db) == ["other", "t"]


def test_lock_timeout_is_a_clear_error(tmp_path):
    import fcntl

    db = tmp_path / "locked.duckdb"
    adapter = DuckDBOutputAdapter(db, table_name="t", lock_timeout=0.3)
    with open(adapter.lock_path, "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        child = subprocess.run(
            [
                sys.executable,
                "-c",
                textwrap.dedent(f"""
            from zoopipe_core import Pipe, PyGeneratorInputAdapter
            from zoopipe_duckdb import DuckDBOutputAdapter
            try:
                Pipe(PyGeneratorInputAdapter([{{"v": 1}}]),
                     DuckDBOutputAdapter({str(db)!r}, table_name="t", lock_timeout=0.3)).run()
            except Exception as exc:
                print(exc)
        """),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert "timed out after 0s waiting for" in child.stdout and "nothing was written" in child.stdout, child
    assert tables(db) == []


# -- several processes, one database file -------------------------------------------------------


def _write_table(db, table, start, count, mode):
    rows = ({"id": i, "label": f"{table}-{i}", "value": i * 0.5} for i in range(start, start + count))
    report = Pipe(PyGeneratorInputAdapter(rows), DuckDBOutputAdapter(db, table_name=table, mode=mode)).run()
    assert report.success_count == count


def test_pipes_in_separate_processes_share_one_database_file(tmp_path):
    db = str(tmp_path / "shared.duckdb")
    jobs = [
        ("users", 0, 20_000, "create"),
        ("orders", 0, 15_000, "create"),
        ("products", 0, 5_000, "create"),
        ("events", 0, 10_000, "append"),
        ("events", 10_000, 10_000, "append"),
    ]
    fork = multiprocessing.get_context("fork")
    processes = [fork.Process(target=_write_table, args=(db, *job)) for job in jobs]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    assert [p.exitcode for p in processes] == [0] * len(jobs)
    assert tables(db) == ["events", "orders", "products", "users"]
    for table, count in [("users", 20_000), ("orders", 15_000), ("products", 5_000), ("events", 20_000)]:
        assert query(
            db, f"SELECT count(*), count(DISTINCT id), min(id), max(id), sum(value) FROM {table}"
        ) == [(count, count, 0, count - 1, sum(i * 0.5 for i in range(count)))]
        assert query(db, f"SELECT count(*) FROM {table} WHERE label <> '{table}-' || id") == [(0,)]
    assert leftovers(tmp_path) == []


def test_a_failing_process_does_not_disturb_the_others(tmp_path):
    db = str(tmp_path / "shared.duckdb")
    fork = multiprocessing.get_context("fork")
    good = [fork.Process(target=_write_table, args=(db, name, 0, 3_000, "create")) for name in ("a", "b")]
    bad = fork.Process(target=_write_table, args=(db, "a", 0, 10, "create"))  # 'a' is taken by then
    for process in good:
        process.start()
    for process in good:
        process.join(120)
    bad.start()
    bad.join(120)
    assert [p.exitcode for p in good] == [0, 0] and bad.exitcode != 0
    assert query(db, "SELECT count(*) FROM a") == [(3_000,)] and query(db, "SELECT count(*) FROM b") == [
        (3_000,)
    ]


def test_pipe_manager_runs_pipes_into_tables_of_one_database(tmp_path):
    from zoopipe_core import PipeManager
    from zoopipe_core.engines import MultiProcessEngine

    db = str(tmp_path / "analytics.duckdb")
    sizes = {"users": 4_000, "orders": 6_000, "products": 2_000}
    pipes = [
        Pipe(
            PyGeneratorInputAdapter([{"id": i, "name": f"{table}-{i}"} for i in range(n)]),
            DuckDBOutputAdapter(db, table_name=table),
        )
        for table, n in sizes.items()
    ]
    with PipeManager(pipes, engine=MultiProcessEngine(max_workers=3)) as manager:
        assert manager.wait(120)
    assert manager.report.total_processed == sum(sizes.values())
    for table, n in sizes.items():
        assert query(db, f"SELECT count(*), count(DISTINCT id), sum(id) FROM {table}") == [
            (n, n, n * (n - 1) // 2)
        ]
    assert leftovers(tmp_path) == []


def test_without_duckdb_the_error_gives_the_install_command():
    script = textwrap.dedent("""
        import sys
        sys.modules["duckdb"] = None  # as if it were not installed
        from zoopipe_core import plugins
        try:
            plugins.get_adapter_class("duckdb", "output")
        except Exception as exc:
            print(type(exc).__name__, exc)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120).stdout
    assert out.startswith("PluginError") and 'pip install "zoopipe-core[duckdb]"' in out, out


def test_loading_plugins_does_not_import_duckdb():
    script = (
        "from zoopipe_core import plugins; plugins.load_plugins(); import sys; print('duckdb' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out


def test_the_docstring_examples_run():
    import zoopipe_duckdb.adapter
    import zoopipe_duckdb.schema

    for module in (zoopipe_duckdb.adapter, zoopipe_duckdb.schema):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0, module


def test_memory_output_still_works_beside_duckdb_plugin():
    out = MemoryOutputAdapter()
    Pipe(PyGeneratorInputAdapter([{"a": 1}]), out).run()
    assert out.records == [{"a": 1}] and "duckdb" in plugins.component_names("adapter", "output")
