"""The suite's markers (tests/conftest.py): `pytest -m "not ray and not dask and not s3 and not duckdb"`
selects no test and no doctest that needs Ray, Dask, S3 or DuckDB, so the core's tests run without
them. Checked on the real suite, collected in a fresh pytest from the repository root."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CORE_ONLY = "not ray and not dask and not s3 and not duckdb and not dvc and not zerocopy"
COMPONENT_FIXTURES = {"ray_cluster", "dask_cluster", "s3_server", "s3_bucket"}


def pytest_output(*args: str) -> str:
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-m", CORE_ONLY, *args]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_core_selection_leaves_out_every_plugin_test_and_doctest() -> None:
    ids = [line for line in pytest_output("--collect-only", "-q").splitlines() if "::" in line]
    assert any(i.startswith("tests/pipe/") for i in ids) and any(i.startswith("zoopipe_core/") for i in ids)
    assert [i for i in ids if i.startswith(("tests/plugins/", "plugins/"))] == []
    # Marked by hand: they need a component without using its fixture.
    assert not [i for i in ids if "test_dask_from_an_unguarded_script" in i or i.endswith("[duckdb]")]
    assert any(
        i.endswith("test_records_that_are_not_objects_are_serialize_errors_on_every_output[csv]") for i in ids
    )


def test_the_core_selection_uses_no_cluster_or_s3_server_fixture() -> None:
    out = pytest_output("--fixtures-per-test")
    assert re.search(r"^- fixtures used by ", out, re.M), out[-2000:]
    used = set(re.findall(r"^(\w+) -- ", out, re.M))
    assert "tmp_path" in used
    assert used & COMPONENT_FIXTURES == set()
