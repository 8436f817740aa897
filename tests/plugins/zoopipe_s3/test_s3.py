"""s3:// URLs against a real S3 endpoint (moto's server on 127.0.0.1, see tests/s3_server.py):
every file format reads and writes S3, outputs are published atomically (multipart upload
completed on commit, aborted on failure), and the S3 syncer pushes and pulls by content hash."""

from __future__ import annotations

import doctest
import gzip
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import assert_completed
from pydantic import BaseModel
from s3_server import s3_keys, s3_pending_uploads

from zoopipe_core import (
    CSVInputAdapter,
    JSONOutputAdapter,
    MemoryOutputAdapter,
    Pipe,
    PipelineError,
    PyGeneratorInputAdapter,
    SingleThreadExecutor,
    plugins,
)
from zoopipe_core.adapters.storage import PendingOutput
from zoopipe_core.syncers import content_hash


class Row(BaseModel):
    id: int
    name: str
    score: float


def rows(n: int) -> list[dict]:
    return [{"id": i, "name": f"name-{i}", "score": i / 4} for i in range(n)]


def _formats() -> list[str]:
    """Every file suffix with both an input and an output adapter, checked when the tests run:
    CSV and JSON Lines (plain, gzip, zstd), and Parquet, Arrow and JSON arrays once registered."""
    candidates = [
        ".csv",
        ".csv.gz",
        ".csv.zst",
        ".tsv",
        ".jsonl",
        ".jsonl.gz",
        ".jsonl.zst",
        ".ndjson",
        ".parquet",
        ".arrow",
        ".feather",
        ".ipc",
        ".json",
    ]
    found = []
    for suffix in candidates:
        try:
            plugins.adapter_name_for_path(f"x{suffix}", "input")
            plugins.adapter_name_for_path(f"x{suffix}", "output")
        except plugins.PluginError:
            continue
        found.append(suffix)
    return found


FORMATS = _formats()


@pytest.mark.parametrize("suffix", FORMATS)
def test_every_format_writes_and_reads_s3(s3_server, s3_bucket, suffix):
    url = f"s3://{s3_bucket}/data/table{suffix}"
    report = Pipe(PyGeneratorInputAdapter(rows(500)), url, schema_model=Row).run()
    assert_completed(report, read=500, written=500, errors=0)
    assert s3_keys(s3_server, s3_bucket) == [f"data/table{suffix}"]

    back = MemoryOutputAdapter()
    report = Pipe(url, back, schema_model=Row).run()
    assert_completed(report, read=500, written=500, errors=0)
    assert back.records == rows(500)


@pytest.mark.parametrize("suffix", [s for s in FORMATS if s in (".csv.gz", ".jsonl.gz")])
def test_compressed_s3_output_is_real_gzip(s3_server, s3_bucket, suffix):
    url = f"s3://{s3_bucket}/out{suffix}"
    Pipe(PyGeneratorInputAdapter(rows(3)), url).run()
    data = s3_server.filesystem().cat_file(f"{s3_bucket}/out{suffix}")
    assert data[:2] == b"\x1f\x8b"
    assert gzip.decompress(data).decode().count("name-") == 3


def test_s3a_urls_and_an_error_output_on_s3(s3_server, s3_bucket):
    source = [{"id": "1", "name": "a", "score": "0.5"}, {"id": "x", "name": "b", "score": "1"}]
    report = Pipe(
        PyGeneratorInputAdapter(source),
        f"s3a://{s3_bucket}/good.jsonl",
        error_output_adapter=f"s3://{s3_bucket}/bad.jsonl",
        schema_model=Row,
    ).run()
    assert_completed(report, read=2, written=1, errors=1)
    fs = s3_server.filesystem()
    assert [json.loads(line) for line in fs.cat_file(f"{s3_bucket}/good.jsonl").splitlines()] == [
        {"id": 1, "name": "a", "score": 0.5}
    ]
    error = json.loads(fs.cat_file(f"{s3_bucket}/bad.jsonl"))
    assert error["stage"] == "validation" and error["line"] == 2


def test_a_successful_run_publishes_exactly_one_object(s3_server, s3_bucket):
    report = Pipe(PyGeneratorInputAdapter(rows(1000)), JSONOutputAdapter(f"s3://{s3_bucket}/out.jsonl")).run()
    assert_completed(report, written=1000)
    assert s3_keys(s3_server, s3_bucket) == ["out.jsonl"]
    assert s3_pending_uploads(s3_server, s3_bucket) == []


def test_s3_outputs_are_written_in_place_not_under_a_temporary_key(s3_server, s3_bucket):
    pending = PendingOutput(f"s3://{s3_bucket}/direct.jsonl")
    assert pending.temp_path is None
    pending.location().file.write(b'{"a":1}\n')
    assert s3_keys(s3_server, s3_bucket) == []
    pending.commit()
    assert s3_keys(s3_server, s3_bucket) == ["direct.jsonl"]


class Boom(BaseException):
    """Not an Exception: `except Exception` in the pipeline cannot swallow it."""


def _failing_after(n_records: int, on_failure=lambda: None):
    """A transform that passes records on until it has seen ``n_records``, then raises Boom."""
    seen = [0]

    def transform(records):
        seen[0] += len(records)
        if seen[0] > n_records:
            on_failure()
            raise Boom("the transform failed halfway")
        return records

    return transform


@pytest.mark.parametrize("suffix", FORMATS)
def test_a_failed_small_run_leaves_nothing_on_s3(s3_server, s3_bucket, suffix):
    url = f"s3://{s3_bucket}/small{suffix}"
    pipe = Pipe(
        PyGeneratorInputAdapter(rows(5000)),
        url,
        post_validation=[_failing_after(2_000)],
        schema_model=Row,
        executor=SingleThreadExecutor(batch_size=500),
    )
    with pytest.raises(PipelineError, match="Boom"):
        pipe.run()
    assert s3_keys(s3_server, s3_bucket) == []
    assert s3_pending_uploads(s3_server, s3_bucket) == []


def test_a_failed_multipart_run_aborts_its_upload(s3_server, s3_bucket):
    """Big enough (about 23 MB before the failure, S3Upload's parts are 8 MiB) for parts to be
    uploaded before the failure: they are aborted, never completed, and the object that was
    there before is untouched."""
    fs = s3_server.filesystem()
    fs.pipe_file(f"{s3_bucket}/big.jsonl", b'{"old": true}\n')
    uploads_at_failure = []
    transform = _failing_after(
        100_000, on_failure=lambda: uploads_at_failure.extend(s3_pending_uploads(s3_server, s3_bucket))
    )
    wide = ({"id": i, "name": "x" * 200, "score": 0.0} for i in range(200_000))
    with pytest.raises(PipelineError, match="Boom"):
        Pipe(
            PyGeneratorInputAdapter(wide),
            f"s3://{s3_bucket}/big.jsonl",
            post_validation=[transform],
            executor=SingleThreadExecutor(batch_size=1000),
        ).run()
    assert uploads_at_failure == ["big.jsonl"], "the output should have been a multipart upload in flight"
    assert s3_pending_uploads(s3_server, s3_bucket) == []
    assert s3_keys(s3_server, s3_bucket) == ["big.jsonl"]
    assert s3_server.filesystem().cat_file(f"{s3_bucket}/big.jsonl") == b'{"old": true}\n'


def test_a_large_successful_run_completes_its_multipart_upload(s3_server, s3_bucket):
    wide = [{"id": i, "name": "y" * 200, "score": 1.0} for i in range(60_000)]
    report = Pipe(PyGeneratorInputAdapter(wide), f"s3://{s3_bucket}/big.jsonl").run()
    assert_completed(report, written=60_000)
    data = s3_server.filesystem().cat_file(f"{s3_bucket}/big.jsonl")
    assert len(data) > 10 * 2**20 and data.count(b"\n") == 60_000
    assert s3_pending_uploads(s3_server, s3_bucket) == []


def test_an_input_error_after_output_started_publishes_nothing(s3_server, s3_bucket):
    """A gzip input cut short fails while reading, after earlier batches were written."""
    lines = "".join(json.dumps(r) + "\n" for r in rows(50_000)).encode()
    truncated = gzip.compress(lines)[:-5000]
    fs = s3_server.filesystem()
    fs.pipe_file(f"{s3_bucket}/in.jsonl.gz", truncated)
    with pytest.raises(PipelineError):
        Pipe(f"s3://{s3_bucket}/in.jsonl.gz", f"s3://{s3_bucket}/out.csv").run()
    assert s3_keys(s3_server, s3_bucket) == ["in.jsonl.gz"]
    assert s3_pending_uploads(s3_server, s3_bucket) == []


def test_missing_s3_input_names_the_url(s3_server, s3_bucket):
    url = f"s3://{s3_bucket}/nowhere/missing.csv"
    with pytest.raises(PipelineError, match=f"input file not found: {url}; check the URL"):
        Pipe(url, MemoryOutputAdapter()).run()


def test_s3_prefix_as_input_is_an_error(s3_server, s3_bucket):
    s3_server.filesystem().pipe_file(f"{s3_bucket}/folder/a.csv", b"a\n1\n")
    with pytest.raises(PipelineError, match=f"input s3://{s3_bucket}/folder is a directory"):
        Pipe(CSVInputAdapter(f"s3://{s3_bucket}/folder"), MemoryOutputAdapter()).run()


def test_without_s3fs_the_error_gives_the_install_command(tmp_path):
    """In a fresh interpreter where s3fs cannot be imported: the syncer lookup, an s3:// output
    and an s3:// input all say exactly how to install it."""
    script = textwrap.dedent(
        """
        import sys
        sys.modules["s3fs"] = None  # as if it were not installed
        from zoopipe_core import Pipe, PyGeneratorInputAdapter, plugins
        for attempt in (
            lambda: plugins.get_syncer_class("s3"),
            lambda: Pipe(PyGeneratorInputAdapter([{"a": 1}]), "s3://bucket/out.jsonl").run(),
            lambda: Pipe("s3://bucket/in.csv", "memory").run(),
        ):
            try:
                attempt()
            except Exception as exc:
                print(type(exc).__name__, exc)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3, result.stdout + result.stderr
    for line in lines:
        assert 'pip install "zoopipe-core[s3]"' in line, line
    assert lines[0].startswith("PluginError syncer 's3'"), lines[0]


# -- the S3 syncer -----------------------------------------------------------------------------


@pytest.fixture
def syncer(s3_server):
    from zoopipe_s3 import S3Syncer

    return S3Syncer()


class Calls:
    """Counts calls of one method of the syncer's s3fs filesystem (it still runs for real)."""

    def __init__(self, monkeypatch, fs, method):
        self.count = 0
        original = getattr(fs, method)

        def counted(*args, **kwargs):
            self.count += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(fs, method, counted)


def make_tree(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root


def test_the_s3_scheme_finds_the_s3_syncer(s3_server):
    from zoopipe_s3 import S3Syncer

    assert plugins.get_syncer_class_for_url("s3://bucket/key") is S3Syncer
    assert plugins.get_syncer_class_for_url("s3a://bucket/key") is S3Syncer


def test_push_and_pull_a_file_skipping_unchanged_content(syncer, s3_bucket, tmp_path, monkeypatch):
    local = tmp_path / "model.bin"
    local.write_bytes(b"weights-v1")
    url = f"s3://{s3_bucket}/models/model.bin"
    uploads = Calls(monkeypatch, syncer.fs, "put_file")
    downloads = Calls(monkeypatch, syncer.fs, "get_file")

    digest = syncer.push(local, url)
    assert digest == content_hash(local) and uploads.count == 1
    assert syncer.remote_hash(url) == digest
    assert syncer.push(local, url) == digest and uploads.count == 1, "unchanged content was uploaded again"

    copy = tmp_path / "pulled" / "model.bin"
    assert syncer.pull(url, copy) == digest and copy.read_bytes() == b"weights-v1"
    assert downloads.count == 1
    assert syncer.pull(url, copy) == digest and downloads.count == 1, "unchanged content was downloaded again"

    local.write_bytes(b"weights-v2")
    assert syncer.push(local, url) == content_hash(local) and uploads.count == 2
    assert syncer.pull(url, copy) == content_hash(local) and copy.read_bytes() == b"weights-v2"
    assert not [p.name for p in copy.parent.iterdir() if ".zoopipe-" in p.name]


def test_push_and_pull_a_directory_file_by_file(syncer, s3_server, s3_bucket, tmp_path, monkeypatch):
    source = make_tree(tmp_path / "data", {"a.csv": "a\n1\n", "sub/b.jsonl": '{"b":2}\n', "sub/c.txt": "c"})
    url = f"s3://{s3_bucket}/runs/data"
    uploads = Calls(monkeypatch, syncer.fs, "put_file")

    digest = syncer.push(source, url)
    assert digest == content_hash(source) and uploads.count == 3
    assert s3_keys(s3_server, s3_bucket) == [
        "runs/data/.zoopipe-manifest.json",
        "runs/data/a.csv",
        "runs/data/sub/b.jsonl",
        "runs/data/sub/c.txt",
    ]
    assert syncer.push(source, url) == digest and uploads.count == 3

    # One file changes, one disappears: only the changed one is uploaded, the other is removed.
    (source / "a.csv").write_text("a\n1\n2\n")
    (source / "sub" / "c.txt").unlink()
    digest = syncer.push(source, url)
    assert uploads.count == 4
    assert s3_keys(s3_server, s3_bucket) == [
        "runs/data/.zoopipe-manifest.json",
        "runs/data/a.csv",
        "runs/data/sub/b.jsonl",
    ]
    assert syncer.remote_hash(url) == digest

    copy = tmp_path / "copy"
    downloads = Calls(monkeypatch, syncer.fs, "get_file")
    assert syncer.pull(url, copy) == digest == content_hash(copy)
    assert (copy / "a.csv").read_text() == "a\n1\n2\n" and not (copy / "sub" / "c.txt").exists()
    assert downloads.count == 2
    assert syncer.pull(url, copy) == digest and downloads.count == 2

    # Remote changes: only the changed file is downloaded; a stale local file goes away.
    (source / "sub" / "b.jsonl").write_text('{"b":3}\n')
    (copy / "stale.txt").write_text("old")
    digest = syncer.push(source, url)
    assert syncer.pull(url, copy) == digest == content_hash(source)
    assert downloads.count == 3
    assert sorted(p.name for p in copy.rglob("*") if p.is_file()) == ["a.csv", "b.jsonl"]
    assert not [p.name for p in tmp_path.iterdir() if ".zoopipe-" in p.name]


def test_pull_a_prefix_written_by_another_tool(syncer, s3_server, s3_bucket, tmp_path):
    fs = s3_server.filesystem()
    fs.pipe({f"{s3_bucket}/foreign/x.txt": b"x", f"{s3_bucket}/foreign/deep/y.txt": b"y"})
    copy = tmp_path / "foreign"
    digest = syncer.pull(f"s3://{s3_bucket}/foreign", copy)
    assert digest == content_hash(copy)
    assert (copy / "x.txt").read_bytes() == b"x" and (copy / "deep" / "y.txt").read_bytes() == b"y"
    assert syncer.remote_hash(f"s3://{s3_bucket}/foreign") is None


def test_pull_refuses_content_that_does_not_match_its_recorded_hash(syncer, s3_server, s3_bucket, tmp_path):
    fs = s3_server.filesystem()
    fs.pipe_file(f"{s3_bucket}/tampered.bin", b"not what was pushed", Metadata={"zoopipe-sha256": "0" * 64})
    target = tmp_path / "tampered.bin"
    target.write_bytes(b"previous")
    with pytest.raises(OSError, match="content hash"):
        syncer.pull(f"s3://{s3_bucket}/tampered.bin", target)
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["tampered.bin"]


def test_pull_of_a_missing_url_names_it(syncer, s3_bucket, tmp_path):
    url = f"s3://{s3_bucket}/no/such/thing"
    with pytest.raises(FileNotFoundError, match=f"cannot pull {url}"):
        syncer.pull(url, tmp_path / "x")


def test_push_of_a_missing_path_and_of_a_bucket_url_are_errors(syncer, s3_bucket, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        syncer.push(tmp_path / "absent", f"s3://{s3_bucket}/x")
    (tmp_path / "f").write_text("f")
    with pytest.raises(ValueError, match="names a bucket"):
        syncer.push(tmp_path / "f", f"s3://{s3_bucket}")


def test_a_directory_push_replaces_a_file_and_back(syncer, s3_server, s3_bucket, tmp_path):
    url = f"s3://{s3_bucket}/thing"
    (tmp_path / "file").write_text("one")
    folder = make_tree(tmp_path / "folder", {"inner.txt": "two"})
    syncer.push(tmp_path / "file", url)
    syncer.push(folder, url)
    assert s3_keys(s3_server, s3_bucket) == ["thing/.zoopipe-manifest.json", "thing/inner.txt"]
    syncer.push(tmp_path / "file", url)
    assert s3_keys(s3_server, s3_bucket) == ["thing"]


def test_the_syncer_docstring_examples_run():
    import zoopipe_s3
    import zoopipe_s3.syncer
    import zoopipe_s3.upload

    for module in (zoopipe_s3, zoopipe_s3.syncer, zoopipe_s3.upload):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0, module


def test_loading_plugins_imports_neither_s3fs_nor_boto():
    script = (
        "from zoopipe_core import plugins; plugins.load_plugins(); plugins.get_syncer_class_for_url('file:///x')\n"
        "import sys, zoopipe_s3; print(sorted(m for m in ('s3fs', 'botocore', 'boto3') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "[]", result
