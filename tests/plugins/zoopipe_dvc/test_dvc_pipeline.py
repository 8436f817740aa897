"""A real DVC pipeline whose stage runs an offloaded function (``storage="dvc"``): after
`dvc repro` the outputs are right, `dvc status` reports nothing changed, the remote already holds
every object of the data and of the stage's output (and nothing else), and `dvc push` uploads
nothing: it says so, and the remote's listing is the same before and after it.

With a local-directory remote, and with an S3 remote on moto's server whose endpoint comes from
DVC's config alone (`endpointurl`; no AWS_ENDPOINT_URL_S3 in the stage's environment), so the
worker reaches it through the options the dvc syncer mapped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from dvc_cli import dvc, dvc_env, dvc_in_process

from zoopipe_core.syncers import HashCache, Manifest

SCRIPT = '''
import pathlib

import zoopipe_core


@zoopipe_core.remote(deps=["data_dir"], outs=["out_dir"], engine="multiprocess", storage="dvc")
def summarize(data_dir, out_dir):
    """The sum of the numbers of each data file, and how many files there are."""
    files = sorted(p for p in pathlib.Path(data_dir).rglob("*") if p.is_file())
    (pathlib.Path(out_dir) / "sums").mkdir()
    for path in files:
        total = sum(int(word) for word in path.read_text().split())
        (pathlib.Path(out_dir) / "sums" / f"{path.stem}.txt").write_text(f"{total}\\n")
    (pathlib.Path(out_dir) / "count.txt").write_text(f"{len(files)}\\n")
    return len(files)


if __name__ == "__main__":
    print("summarized", summarize(data_dir="data", out_dir="out"), "files")
'''

DVC_YAML = """\
stages:
  summarize:
    cmd: python summarize.py
    deps:
      - data
      - summarize.py
    outs:
      - out
"""

DATA = {
    "a.txt": "1 2 3\n",
    "b.txt": "10\n20\n",
    "nested/deeper/c.txt": "7\n",
    "ünï/ß.txt": "100 -1\n",
    "nested/d.txt": "6\n",  # content equal to an output's: one object for both
}
EXPECTED_SUMS = {"a.txt": "6\n", "b.txt": "30\n", "c.txt": "7\n", "ß.txt": "99\n", "d.txt": "6\n"}


@pytest.fixture(autouse=True)
def isolated_dvc_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DVC's global and system configs in empty folders (dvc_env does the same for `dvc`)."""
    monkeypatch.setenv("DVC_GLOBAL_CONFIG_DIR", str(tmp_path / "dvc-global"))
    monkeypatch.setenv("DVC_SYSTEM_CONFIG_DIR", str(tmp_path / "dvc-system"))
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")


def make_project(repo: Path) -> None:
    """A DVC repository (no Git) holding the data, the stage's script and dvc.yaml."""
    repo.mkdir()
    dvc_in_process(repo, "init", "--no-scm", "-q")
    for relative, text in DATA.items():
        (repo / "data" / relative).parent.mkdir(parents=True, exist_ok=True)
        (repo / "data" / relative).write_text(text)
    (repo / "summarize.py").write_text(SCRIPT)
    (repo / "dvc.yaml").write_text(DVC_YAML)


def dvc_objects(repo: Path, digest: str) -> set[str]:
    """The remote keys (``files/md5/...``) of DVC's object ``digest`` and, for a directory, of
    each file its listing (read from DVC's cache) names."""

    def key(md5: str) -> str:
        return f"files/md5/{md5[:2]}/{md5[2:]}"

    keys = {key(digest)}
    if digest.endswith(".dir"):
        listing = json.loads((repo / ".dvc" / "cache" / key(digest)).read_text())
        keys |= {key(entry["md5"]) for entry in listing}
    return keys


def run_pipeline(repo: Path, env: dict[str, str], remote: str, remote_keys: Callable[[], set[str]]) -> None:
    dvc_in_process(repo, "add", "-q", "data")
    assert remote_keys() == set()  # nothing pushed: what is there after the run, the run put there

    assert "summarized 5 files" in dvc(repo, "repro", env=env)

    out = repo / "out"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == sorted(
        ["count.txt", *(f"sums/{name}" for name in EXPECTED_SUMS)]
    )
    assert (out / "count.txt").read_text() == "5\n"
    assert {name: (out / "sums" / name).read_text() for name in EXPECTED_SUMS} == EXPECTED_SUMS

    # zoopipe's hashes are DVC's: the output recorded in dvc.lock is the manifest zoopipe stored
    lock = (repo / "dvc.lock").read_text()
    out_hash = Manifest.of(out, HashCache(repo.parent / "md5.sqlite")).hash
    assert f"md5: {out_hash}\n" in lock
    data_hash = Manifest.of(repo / "data", HashCache(repo.parent / "md5.sqlite")).hash
    assert f"md5: {data_hash}\n" in (repo / "data.dvc").read_text()

    stored = remote_keys()
    assert stored == dvc_objects(repo, data_hash) | dvc_objects(repo, out_hash)
    # data: 5 files and its .dir; out: its .dir and 6 files of 5 contents, "6\n" and "7\n" being data's too
    assert len(stored) == 6 + 1 + 5 - 2

    assert dvc(repo, "status", env=env).strip() == "Data and pipelines are up to date."
    assert dvc(repo, "push", env=env).strip() == "Everything is up to date."
    assert remote_keys() == stored
    assert dvc(repo, "status", "--cloud", env=env).strip() == f"Cache and remote '{remote}' are in sync."


def test_dvc_repro_then_push_uploads_nothing_local_remote(tmp_path: Path) -> None:
    repo = tmp_path / "project"
    make_project(repo)
    remote_dir = tmp_path / "dvc-remote"
    dvc_in_process(repo, "remote", "add", "-d", "storage", "../dvc-remote")  # relative, as users write it

    def remote_keys() -> set[str]:
        return {p.relative_to(remote_dir).as_posix() for p in remote_dir.rglob("*") if p.is_file()}

    run_pipeline(repo, dvc_env(tmp_path), "storage", remote_keys)


def test_dvc_repro_then_push_uploads_nothing_s3_remote(tmp_path: Path, s3_server, s3_bucket) -> None:
    import s3fs

    repo = tmp_path / "project"
    make_project(repo)
    dvc_in_process(repo, "remote", "add", "-d", "s3store", f"s3://{s3_bucket}/dvc-store")
    dvc_in_process(repo, "remote", "modify", "s3store", "endpointurl", s3_server.endpoint_url)
    env = dvc_env(tmp_path)
    env.pop("AWS_ENDPOINT_URL_S3")  # the endpoint is DVC's config's (the credentials: moto's dummies)
    listing = s3fs.S3FileSystem(
        client_kwargs={"endpoint_url": s3_server.endpoint_url}, skip_instance_cache=True
    )

    def remote_keys() -> set[str]:
        listing.invalidate_cache()
        prefix = f"{s3_bucket}/dvc-store/"
        return {key[len(prefix) :] for key in listing.find(prefix)}

    run_pipeline(repo, env, "s3store", remote_keys)
