"""Shared fixtures and checks for the Pipe test suite.

Every test that runs a pipe checks its report with `assert_counts_add_up` (records read ==
written + errors) and, where it writes files, counts their lines with `count_lines`.

This is the suite's only conftest.py: test modules import its helpers with `from conftest import
...`, and pytest would import a second conftest.py (in a subfolder) under the same module name.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from zoopipe_core import PipeReport, PipeStatus


def assert_counts_add_up(
    report: PipeReport, *, read: int | None = None, written: int | None = None, errors: int | None = None
) -> None:
    """The invariant of every finished run, plus the expected counts when given."""
    assert report.is_finished, f"the run has not finished: {report!r}"
    assert report.total_processed == report.success_count + report.error_count, report
    if read is not None:
        assert report.total_processed == read, report
    if written is not None:
        assert report.success_count == written, report
    if errors is not None:
        assert report.error_count == errors, report


def assert_completed(report: PipeReport, **counts: int) -> None:
    """A successful run: status COMPLETED, no exception, and the counts add up."""
    assert report.status == PipeStatus.COMPLETED, report
    assert not report.has_error and report.exception is None, report.exception
    assert_counts_add_up(report, **counts)


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """A file's content, decompressed by suffix (.gz with gzip, .zst with the zstd CLI)."""
    path = os.fspath(path)
    if path.endswith(".gz"):
        with gzip.open(path, "rb") as f:
            return f.read()
    if path.endswith(".zst"):
        zstd = shutil.which("zstd")
        assert zstd, "reading .zst in tests needs the zstd command"
        return subprocess.run([zstd, "-dc", path], check=True, capture_output=True).stdout
    return Path(path).read_bytes()


def count_lines(path: str | os.PathLike[str]) -> int:
    return len(read_bytes(path).decode("utf-8").splitlines())


def read_jsonl(path: str | os.PathLike[str]) -> list[Any]:
    return [json.loads(line) for line in read_bytes(path).decode("utf-8").splitlines()]


def assert_nothing_published(directory: str | os.PathLike[str], *final_names: str) -> None:
    """After a failed or cancelled run: no final output and no leftover temporary file."""
    names = sorted(os.listdir(directory))
    for name in final_names:
        assert name not in names, f"{name} was published by a run that did not succeed: {names}"
    leftovers = [n for n in names if n.endswith(".tmp") or ".zoopipe-" in n]
    assert not leftovers, f"temporary files left behind: {leftovers}"


@pytest.fixture
def write_csv(tmp_path: Path):
    """write_csv(name, text_or_rows, encoding=..., bom=...) -> path (str) under tmp_path.

    Text is written as is (as bytes if given bytes); rows (an iterable of sequences) are joined
    with commas, the first row being the header. A `.gz` name is gzip-compressed.
    """

    def write(name: str, content: str | bytes | Iterable[Iterable[Any]], *, bom: bool = False) -> str:
        if isinstance(content, (str, bytes)):
            data = content.encode("utf-8") if isinstance(content, str) else content
        else:
            data = "".join(",".join(str(v) for v in row) + "\n" for row in content).encode("utf-8")
        if bom:
            data = b"\xef\xbb\xbf" + data
        path = tmp_path / name
        if name.endswith(".gz"):
            data = gzip.compress(data)
        path.write_bytes(data)
        return str(path)

    return write


@pytest.fixture
def memfs():
    """fsspec's in-memory filesystem, emptied before and after the test."""
    import fsspec

    fs = fsspec.filesystem("memory")

    def clear() -> None:
        fs.store.clear()
        fs.pseudo_dirs.clear()
        fs.pseudo_dirs.append("")

    clear()
    yield fs
    clear()


# Fixtures of helper modules: a fresh plugin registry and fake installed distributions for the
# plugin-system tests (tests/plugin_fakes.py); the S3 server (moto, on 127.0.0.1) for the s3://
# tests (tests/s3_server.py).
from plugin_fakes import fake_distribution, fresh_plugins  # noqa: E402, F401
from s3_server import s3_bucket, s3_calls, s3_server  # noqa: E402, F401

# The fixture projects are data: collecting their modules (as doctests) would put them on
# sys.path, and this interpreter would then import them from here, not from the tests' copies.
collect_ignore = ["installers/fixtures"]


_RAY_TMPDIR = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """Every Ray this session starts (in-process, in the scripts it runs, and their raylets and
    workers, which inherit RAY_TMPDIR) keeps its session directories under a temporary directory
    of its own, removed at the end. Ray never removes them: under /tmp/ray each run left gigabytes
    behind (a copy of .venv per pip runtime_env per node), run after run; and a bare ray.init()
    joins the cluster named in /tmp/ray/ray_current_cluster, which a killed Cluster leaves."""
    if "RAY_TMPDIR" not in os.environ:
        import tempfile

        # Short, under /tmp: Ray's Unix socket paths live below it (at most 107 bytes).
        os.environ["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="zoopipe-ray-", dir="/tmp")
        config.stash[_RAY_TMPDIR] = os.environ["RAY_TMPDIR"]


def pytest_unconfigure(config: pytest.Config) -> None:
    temp_dir = config.stash.get(_RAY_TMPDIR, None)
    if temp_dir is not None:
        shutil.rmtree(temp_dir, ignore_errors=True)
        del os.environ["RAY_TMPDIR"]


@pytest.fixture(autouse=True)
def _engines_do_not_outlive_their_test():
    """An engine a test started and left running (a manager never shuts down an engine it was
    given; interpreter exit does) is shut down after the test, so workers do not pile up."""
    from zoopipe_core.engines import running_engines

    before = set(running_engines())
    yield
    for engine in running_engines():
        if engine not in before:
            engine.shutdown()


# --------------------------------------------------------------------------- Ray and Dask clusters


@pytest.fixture(scope="session")
def ray_cluster():
    """A local Ray with 2 CPUs, started once per test session and shut down at its end.

    RayEngine(address=None) joins it (and does not shut it down); tests get the GCS address.
    """
    import ray

    # address="local": a Ray of its own even when another is running on this machine (ray.init()
    # would join that one, and refuse num_cpus).
    context = ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield context.address_info["gcs_address"]
    ray.shutdown()


@pytest.fixture(scope="session")
def dask_cluster():
    """A Dask LocalCluster of 2 worker processes with 1 thread each, once per test session.

    It keeps Dask's default ``allowed-failures``, like a cluster a user would connect to, so
    DaskEngine's own guard against re-running a lost worker's task is what the tests exercise.
    """
    from distributed import LocalCluster
    from distributed.deploy.cluster import Cluster

    class SessionCluster(LocalCluster):
        def _update_worker_status(self, op, msg):
            # distributed 2026.8's SpecCluster looks up a removed worker's name without checking
            # that its copy of the scheduler's state lists it. These tests SIGKILL workers and
            # replace nannies (restore_dask_workers), and a removal for an address the copy never
            # listed raised KeyError, ending the task that watches worker status; the session's
            # teardown then re-raised it from cluster.close().
            # SpecCluster also closes, 15 s (lost-worker-timeout) after a worker's removal, the
            # nanny whose name has no worker by then: on a loaded machine a SIGKILLed worker's
            # nanny is still restarting it, and the session lost a worker mid-test ("Nanny at
            # ... closed"). Nannies restart their workers themselves and restore_dask_workers
            # replaces a nanny that did close, so only the state copy is kept up to date here.
            if op == "remove" and msg not in self.scheduler_info.get("workers", {}):
                return
            Cluster._update_worker_status(self, op, msg)

    cluster = SessionCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    yield cluster
    cluster.close()


class OnSessionDask:
    """A contract suite (EngineContract, MapContract, ...) on the session's LocalCluster: mix it in
    first. The scheduler's address is set per class, before the contract's setup_method calls
    make_engine(), and each test starts with both workers there."""

    address = ""

    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def _cluster(cls, dask_cluster):
        cls.address = dask_cluster.scheduler_address

    @pytest.fixture(autouse=True)
    def _both_workers(self, dask_cluster):
        restore_dask_workers(dask_cluster)

    def make_engine(self):
        from zoopipe_dask import DaskEngine

        return DaskEngine(self.address)


def restore_dask_workers(cluster, workers: int = 2, timeout: float = 90.0) -> None:
    """Wait until the session's LocalCluster has its `workers` again.

    Tests SIGKILL workers (a lost worker, a cancelled task past its grace period); each worker's
    nanny starts a new process. On a heavily loaded machine that restart can fail and the nanny
    close for good (seen as "Nanny at ... closed"), possibly while this function already waits,
    and every later test would find one worker where it needs two. So it looks again every few
    seconds: a closed nanny is replaced, and the cluster is waited for. The timeout stays under
    pytest's (120 s), so a cluster that never recovers fails with the nannies' states.
    """
    import time

    from distributed.core import Status

    deadline = time.monotonic() + timeout
    while True:
        for name, nanny in list(cluster.workers.items()):
            if nanny.status in (Status.closed, Status.failed):
                cluster.worker_spec.pop(name, None)
                cluster.workers.pop(name, None)
        cluster.scale(workers)
        try:
            cluster.wait_for_workers(workers, timeout=max(1.0, min(5.0, deadline - time.monotonic())))
            return
        except TimeoutError as exc:
            if time.monotonic() < deadline:
                continue
            nannies = {name: (nanny.status.name, nanny.pid) for name, nanny in cluster.workers.items()}
            raise TimeoutError(
                f"the session's Dask cluster did not get its {workers} workers back within "
                f"{timeout:.0f} s; nannies (status, worker pid): {nannies}"
            ) from exc


# --------------------------------------------------------------------------- markers

# What a test needs, as a marker (registered in pyproject.toml), so `pytest -m "not ray"` skips it:
# everything in a first-party plugin's folder (tests/plugins/zoopipe_ray/, and the doctests of
# plugins/engines/zoopipe_ray/) and every test that uses the fixture starting that component.
MARKER_BY_PACKAGE = {
    "zoopipe_ray": "ray",
    "zoopipe_dask": "dask",
    "zoopipe_s3": "s3",
    "zoopipe_duckdb": "duckdb",
    "zoopipe_dvc": "dvc",
    "zoopipe_zerocopy": "zerocopy",
}
MARKER_BY_FIXTURE = {"ray_cluster": "ray", "dask_cluster": "dask", "s3_server": "s3"}


@pytest.hookimpl(tryfirst=True)  # before pytest's own hook deselects by marker (-m)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        needs = {MARKER_BY_PACKAGE[part] for part in item.path.parts if part in MARKER_BY_PACKAGE}
        fixtures = getattr(item, "fixturenames", ())
        needs |= {marker for fixture, marker in MARKER_BY_FIXTURE.items() if fixture in fixtures}
        for marker in sorted(needs):
            item.add_marker(marker)
    # The session's Ray starts with the first test that needs it and runs to the end of the
    # session: those tests go last (in their order), so Ray's processes are not competing with the
    # Dask tests' worker restarts on a small machine (test_task_cpus, in tests/engines/, would
    # otherwise start Ray before tests/plugins/zoopipe_dask/ runs).
    items.sort(key=lambda item: item.get_closest_marker("ray") is not None)
