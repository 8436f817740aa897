"""The PipeManager contract: the manager's suite, run against any engine."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from zoopipe_core.engines import Engine, WorkerLost
from zoopipe_core.testing.pipes import (
    HoldAfterFirstBatch,
    KillOnce,
    LogRecords,
    NeverEnds,
    UserSchema,
    read_lines,
    write_users,
)
from zoopipe_core.testing.sync import WAIT, raises, touch, wait_for


class PipeManagerContract:
    """The PipeManager suite, run against an engine; subclass it once per engine.

    Override :meth:`make_engine` to return a new, stopped engine with at least 2 workers; each
    test makes its own managers, each on a new engine that the manager starts and the test
    shuts down when it ends (a manager never shuts down an engine it was given). ``self.tmp`` is a
    temporary directory that workers can read and write. The transforms and schema are
    module-level classes of this module, so engines that pickle pipes can ship them.

    Example:
        >>> from zoopipe_core.engines import MultiProcessEngine
        >>> class TestManagerOnProcesses(PipeManagerContract):
        ...     def make_engine(self):
        ...         return MultiProcessEngine(max_workers=2)
        >>> case = TestManagerOnProcesses()
        >>> case.setup_method()
        >>> case.test_start_twice_is_an_error()
        >>> case.teardown_method()
    """

    #: Set True when the engine's WorkerLost carries the dead worker's pid and signal.
    reports_lost_worker_pid = False

    def make_engine(self) -> Engine:
        """A new, stopped engine under test; subclasses override this."""
        raise NotImplementedError(
            f"{type(self).__name__} must override make_engine() to return the engine under test"
        )

    def new_engine(self) -> Engine:
        """A new engine from :meth:`make_engine`, shut down when the test ends."""
        engine = self.make_engine()
        self._engines.append(engine)
        return engine

    def setup_method(self, method: Any = None) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="zoopipe-manager-contract-"))
        self._engines: list[Engine] = []

    def teardown_method(self, method: Any = None) -> None:
        try:
            for engine in self._engines:
                engine.shutdown(timeout=5.0)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def path(self, name: str) -> str:
        return str(self.tmp / name)

    def users_files(self, count: int = 3, per_file: int = 200, bad_every: int = 0) -> list[str]:
        return [
            write_users(self.path(f"users{i}.jsonl"), i * per_file, per_file, bad_every) for i in range(count)
        ]

    def pipe(
        self, source: Any, out: str, errors: str | None = None, transforms: Any = (), batch_size: int = 50
    ) -> Any:
        from zoopipe_core import JSONInputAdapter, JSONOutputAdapter, Pipe, SingleThreadExecutor

        return Pipe(
            JSONInputAdapter(source),
            JSONOutputAdapter(out),
            error_output_adapter=JSONOutputAdapter(errors) if errors else None,
            schema_model=UserSchema,
            post_validation=list(transforms),
            executor=SingleThreadExecutor(batch_size=batch_size),
        )

    def expected(self, files: list[str], out: str, errors: str) -> tuple[list[str], list[str]]:
        """Outputs and error outputs of the files run one by one in this process, concatenated."""
        lines: list[str] = []
        error_lines: list[str] = []
        for i, source in enumerate(files):
            target, failed = self.path(f"expected{i}.jsonl"), self.path(f"expected-errors{i}.jsonl")
            self.pipe(source, target, failed).run()
            lines += read_lines(target)
            error_lines += read_lines(failed)
        return lines, error_lines

    # ------------------------------------------------------------------ tests

    def test_start_twice_is_an_error(self) -> None:
        from zoopipe_core import PipeManager

        files = self.users_files(count=2, per_file=200)  # 4 batches: the pipes wait after one
        hold = HoldAfterFirstBatch(self.path("release"))
        manager = PipeManager(
            [self.pipe(f, self.path(f"out{i}.jsonl"), transforms=[hold]) for i, f in enumerate(files)],
            engine=self.new_engine(),
        )
        manager.start()
        try:
            raises(RuntimeError, manager.start)
            assert manager.is_running
        finally:
            touch(self.path("release"))
            assert manager.wait(WAIT)
        assert not manager.is_running and manager.report.status.value == "completed"

    def test_pipes_run_in_parallel_with_live_reports(self) -> None:
        from zoopipe_core import PipeManager

        files = self.users_files(count=2, per_file=300)
        release = self.path("release")
        pipes = [
            self.pipe(f, self.path(f"out{i}.jsonl"), transforms=[HoldAfterFirstBatch(release)])
            for i, f in enumerate(files)
        ]
        manager = PipeManager(pipes, engine=self.new_engine())
        with manager:
            wait_for(
                lambda: all(r.total_processed > 0 for r in manager.pipe_reports),
                "progress from both workers while their pipes run",
            )
            reports = manager.pipe_reports
            assert [r.pipe_index for r in reports] == [0, 1]
            assert all(r.is_alive and not r.is_finished for r in reports)
            assert all(r.ram_bytes > 0 for r in reports)
            flow = manager.report
            assert not flow.is_finished and flow.total_processed > 0 and flow.ram_bytes > 0
            touch(release)
        flow = manager.report
        assert flow.is_finished and not flow.has_error
        assert (flow.total_processed, flow.success_count, flow.error_count) == (600, 600, 0)
        assert manager.get_pipe_report(1).success_count == 300
        assert all(not r.is_alive for r in manager.pipe_reports)
        assert len(read_lines(self.path("out0.jsonl"))) == 300

    def test_list_of_files_sharded_without_merge(self) -> None:
        from zoopipe_core import PipeManager

        files = self.users_files(count=3, bad_every=7)
        out, errors = self.path("out.jsonl"), self.path("errors.jsonl")
        expected, expected_errors = self.expected(files, out, errors)
        manager = PipeManager.parallelize_pipe(
            self.pipe(files, out, errors), workers=2, engine=self.new_engine()
        )
        assert manager.pipe_count == 3
        report = manager.run(show_progress=False)
        assert report.total_processed == 600 and report.error_count == len(expected_errors)
        parts = [self.path(f"out.part-{i:05d}.jsonl") for i in range(3)]
        error_parts = [self.path(f"errors.part-{i:05d}.jsonl") for i in range(3)]
        assert [line for p in parts for line in read_lines(p)] == expected
        assert [line for p in error_parts for line in read_lines(p)] == expected_errors
        assert not os.path.exists(out) and not os.path.exists(errors)

    def test_list_of_files_merged(self) -> None:
        import json

        from zoopipe_core import PipeManager

        files = self.users_files(count=3, bad_every=7)
        out, errors = self.path("out.jsonl"), self.path("errors.jsonl")
        expected, expected_errors = self.expected(files, out, errors)
        manager = PipeManager.parallelize_pipe(
            self.pipe(files, out, errors), workers=2, should_merge=True, engine=self.new_engine()
        )
        manager.run(show_progress=False)
        assert read_lines(out) == expected
        assert read_lines(errors) == expected_errors
        first_error = json.loads(read_lines(errors)[0])
        assert (first_error["source"], first_error["line"]) == (files[0], 1)  # user 0 is bad
        assert not [n for n in os.listdir(self.tmp) if ".part-" in n or n.endswith(".tmp")]

    def test_a_killed_worker_fails_only_its_shard_and_nothing_is_merged(self) -> None:
        from zoopipe_core import PipeManager
        from zoopipe_core.errors import PipelineError

        files = self.users_files(count=3, per_file=100)
        out = self.path("out.jsonl")
        kill = KillOnce(self.path("killed"), on_id=150)  # in the second file
        manager = PipeManager.parallelize_pipe(
            self.pipe(files, out, transforms=[kill]),
            workers=2,
            should_merge=True,
            engine=self.new_engine(),
        )
        error = raises(PipelineError, lambda: manager.run(show_progress=False))
        # The failure names the pipe by its input and output, and the reason.
        assert f"pipe 1 ({files[1]} -> {self.path('out.part-00001.jsonl')}) failed" in str(error)
        report = manager.report
        assert report.failure_reasons[1].startswith(f"pipe 1 ({files[1]} -> ")
        assert report.is_finished and report.has_error and list(report.failures) == [1]
        lost = report.failures[1]
        assert isinstance(lost, WorkerLost), repr(lost)
        if self.reports_lost_worker_pid:
            assert lost.pid and lost.signal_name == "SIGKILL" and "SIGKILL" in str(error)
        assert manager.get_pipe_report(1).has_error
        assert [r.status.value for r in manager.pipe_reports] == ["completed", "failed", "completed"]
        assert not os.path.exists(out), "a failed shard must leave nothing under the merged name"
        leftovers = [n for n in os.listdir(self.tmp) if n.endswith(".tmp")]
        assert leftovers == [], f"the killed worker's temporary file was not removed: {leftovers}"

    def test_retries_rerun_a_killed_shard_and_every_record_arrives_once(self) -> None:
        from zoopipe_core import PipeManager

        files = self.users_files(count=3, per_file=100)
        out = self.path("out.jsonl")
        expected, _ = self.expected(files, out, self.path("unused-errors.jsonl"))
        kill = KillOnce(self.path("killed"), on_id=150)
        manager = PipeManager.parallelize_pipe(
            self.pipe(files, out, transforms=[kill]),
            workers=2,
            should_merge=True,
            engine=self.new_engine(),
            retries=1,
        )
        report = manager.run(show_progress=False)
        assert os.path.exists(self.path("killed")), "the worker was never killed"
        assert not report.has_error and report.success_count == 300
        assert sorted(read_lines(out)) == sorted(expected)

    def test_shutdown_stops_pipes_that_never_end(self) -> None:
        from zoopipe_core import PipeManager

        files = self.users_files(count=2, per_file=20)
        started = [self.path(f"started{i}") for i in range(2)]
        pipes = [
            self.pipe(f, self.path(f"out{i}.jsonl"), transforms=[NeverEnds(started[i])])
            for i, f in enumerate(files)
        ]
        manager = PipeManager(pipes, engine=self.new_engine())
        manager.start()
        wait_for(lambda: all(os.path.exists(s) for s in started), "both pipes to start")
        began = time.monotonic()
        manager.shutdown(timeout=1.0)
        elapsed = time.monotonic() - began
        assert elapsed < 1.0 + 4.0, f"shutdown(timeout=1.0) took {elapsed:.1f} s"
        assert not manager.is_running
        assert manager.report.status.value == "cancelled"
        assert [r.status.value for r in manager.pipe_reports] == ["cancelled", "cancelled"]
        assert not os.path.exists(self.path("out0.jsonl"))

    def test_shutdown_mid_run_leaves_no_files_and_no_noise(self) -> None:
        import logging

        from zoopipe_core import PipeManager

        # Shard 0 is one batch and completes (publishing its part); shards 1 and 2 hold.
        files = [write_users(self.path("users0.jsonl"), 0, 20)] + [
            write_users(self.path(f"users{i}.jsonl"), i * 1000, 300) for i in (1, 2)
        ]
        out, errors = self.path("out.jsonl"), self.path("errors.jsonl")
        hold = HoldAfterFirstBatch(self.path("never-released"))
        manager = PipeManager.parallelize_pipe(
            self.pipe(files, out, errors, transforms=[hold]),
            workers=2,
            should_merge=True,
            engine=self.make_engine(),
        )
        records = LogRecords()
        logger = logging.getLogger("zoopipe")
        logger.addHandler(records)
        try:
            manager.start()
            wait_for(
                lambda: (
                    manager.pipe_reports[0].status.value == "completed"
                    and all(r.total_processed > 0 for r in manager.pipe_reports[1:])
                ),
                "shard 0 to complete and shards 1 and 2 to run",
            )
            began = time.monotonic()
            manager.shutdown(timeout=5.0)
            elapsed = time.monotonic() - began
        finally:
            logger.removeHandler(records)
        assert elapsed < 5.0 + 4.0, f"shutdown(timeout=5.0) took {elapsed:.1f} s"
        assert manager.report.status.value == "cancelled"
        assert [r.status.value for r in manager.pipe_reports] == ["completed", "cancelled", "cancelled"]
        left = sorted(n for n in os.listdir(self.tmp) if not n.startswith("users"))
        assert left == [], f"a stopped run left files behind: {left}"
        noise = [r.getMessage() for r in records.records if r.levelno >= logging.WARNING]
        assert noise == [], f"shutdown logged: {noise}"

    def test_csv_files_merge_under_one_header_with_true_error_lines(self) -> None:
        import json

        from zoopipe_core import CSVInputAdapter, CSVOutputAdapter, JSONOutputAdapter, Pipe, PipeManager

        files = []
        for i in range(3):
            rows = "".join(
                f"{'x' if n % 5 == 0 else n},user{n},u{n}@x.io\n" for n in range(i * 20, i * 20 + 20)
            )
            files.append(self.path(f"users{i}.csv"))
            Path(files[-1]).write_text("user_id,username,email\n" + rows)
        out, errors = self.path("out.csv"), self.path("errors.jsonl")
        pipe = Pipe(
            CSVInputAdapter(files),
            CSVOutputAdapter(out),
            error_output_adapter=JSONOutputAdapter(errors),
            schema_model=UserSchema,
        )
        report = PipeManager.parallelize_pipe(
            pipe, workers=2, should_merge=True, engine=self.new_engine()
        ).run(show_progress=False)
        assert (report.success_count, report.error_count) == (48, 12)
        lines = read_lines(out)
        assert lines[0] == "user_id,username,email" and len(lines) == 49
        assert sorted(int(line.split(",")[0]) for line in lines[1:]) == [n for n in range(60) if n % 5]
        where = [(json.loads(line)["source"], json.loads(line)["line"]) for line in read_lines(errors)]
        assert where == [(files[n // 20], n % 20 + 2) for n in range(0, 60, 5)]  # +1 header, 1-based

    def test_one_jsonl_file_split_into_byte_ranges(self) -> None:
        import json

        from zoopipe_core import PipeManager

        source = write_users(self.path("users.jsonl"), 0, 500, bad_every=9)
        out, errors = self.path("out.jsonl"), self.path("errors.jsonl")
        expected, expected_errors = self.expected([source], out, errors)
        for should_merge in (False, True):
            manager = PipeManager.parallelize_pipe(
                self.pipe(source, out, errors), workers=2, should_merge=should_merge, engine=self.new_engine()
            )
            assert manager.pipe_count == 2
            manager.run(show_progress=False)
            if should_merge:
                lines, error_lines = read_lines(out), read_lines(errors)
            else:
                lines = read_lines(self.path("out.part-00000.jsonl")) + read_lines(
                    self.path("out.part-00001.jsonl")
                )
                error_lines = read_lines(self.path("errors.part-00000.jsonl")) + read_lines(
                    self.path("errors.part-00001.jsonl")
                )
            assert lines == expected and error_lines == expected_errors
        assert [json.loads(e)["line"] for e in error_lines] == [n + 1 for n in range(0, 500, 9)]

    def test_one_csv_file_split_with_quoted_newlines(self) -> None:
        import json

        from zoopipe_core import CSVInputAdapter, CSVOutputAdapter, JSONOutputAdapter, Pipe, PipeManager

        source = self.path("users.csv")
        rows = "".join(f'{"x" if n % 11 == 0 else n},"user\n{n}",u{n}@x.io\n' for n in range(400))
        Path(source).write_text("user_id,username,email\n" + rows)
        out, errors = self.path("out.csv"), self.path("errors.jsonl")

        def pipe() -> Any:
            return Pipe(
                CSVInputAdapter(source),
                CSVOutputAdapter(out),
                error_output_adapter=JSONOutputAdapter(errors),
                schema_model=UserSchema,
            )

        pipe().run()
        expected, expected_errors = read_lines(out), read_lines(errors)
        os.remove(out)
        os.remove(errors)
        report = PipeManager.parallelize_pipe(
            pipe(), workers=2, should_merge=True, engine=self.new_engine()
        ).run(show_progress=False)
        assert (report.success_count, report.error_count) == (400 - 37, 37)
        assert read_lines(out) == expected and read_lines(errors) == expected_errors
        assert [json.loads(e)["line"] for e in expected_errors] == [2 + 2 * n for n in range(0, 400, 11)]

    def test_parquet_split_by_row_groups_and_merged(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from zoopipe_core import ParquetInputAdapter, ParquetOutputAdapter, Pipe, PipeManager

        source, out = self.path("users.parquet"), self.path("out.parquet")
        table = pa.table(
            {
                "user_id": list(range(300)),
                "username": [f"u{n}" for n in range(300)],
                "email": [f"u{n}@x.io" for n in range(300)],
            }
        )
        for groups, workers in ((100, 2), (300, 3)):  # 3 groups over 2 workers; 1 group over 3
            pq.write_table(table, source, row_group_size=groups)
            manager = PipeManager.parallelize_pipe(
                Pipe(ParquetInputAdapter(source), ParquetOutputAdapter(out), schema_model=UserSchema),
                workers=workers,
                should_merge=True,
                engine=self.new_engine(),
            )
            assert manager.pipe_count == workers
            manager.run(show_progress=False)
            assert pq.read_table(out).column("user_id").to_pylist() == list(range(300))
