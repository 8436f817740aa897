"""The local syncer: push and pull files and directories atomically, skipping unchanged content,
and the content hash it compares."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from zoopipe_core.syncers import LocalSyncer, content_hash

pytestmark = pytest.mark.usefixtures("fresh_plugins")  # a fresh registry per test (tests/plugin_fakes.py)


# --------------------------------------------------------------------------- local syncer


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".zoopipe-" in p.name)


def test_local_syncer_pushes_a_file_and_skips_unchanged(tmp_path):
    source = tmp_path / "data.csv"
    source.write_text("a,b\n1,2\n")
    remote = tmp_path / "remote" / "data.csv"
    syncer = LocalSyncer()

    digest = syncer.push(source, remote.as_uri())
    assert digest == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    assert remote.read_text() == "a,b\n1,2\n"
    inode = remote.stat().st_ino

    assert syncer.push(source, str(remote)) == digest
    assert remote.stat().st_ino == inode  # unchanged content: not copied again

    source.write_text("a,b\n3,4\n")
    new_digest = syncer.push(source, str(remote))
    assert new_digest != digest and remote.read_text() == "a,b\n3,4\n"
    assert leftovers(remote.parent) == []


def test_local_syncer_pulls_a_directory_atomically(tmp_path):
    remote = tmp_path / "remote"
    (remote / "sub").mkdir(parents=True)
    (remote / "a.txt").write_text("A")
    (remote / "sub" / "b.txt").write_text("B")
    local = tmp_path / "work" / "data"
    syncer = LocalSyncer()

    digest = syncer.pull(remote.as_uri(), local)
    assert digest == content_hash(remote) == content_hash(local)
    assert (local / "sub" / "b.txt").read_text() == "B"
    inode = local.stat().st_ino
    assert syncer.pull(str(remote), local) == digest
    assert local.stat().st_ino == inode

    (remote / "a.txt").unlink()
    (remote / "c.txt").write_text("C")
    assert syncer.pull(str(remote), local) != digest
    assert sorted(p.name for p in local.iterdir()) == ["c.txt", "sub"]
    assert leftovers(local.parent) == []


def test_directory_hash_depends_on_names_and_content(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        folder.mkdir()
        (folder / "x.txt").write_text("same")
    assert content_hash(first) == content_hash(second)
    (second / "x.txt").rename(second / "y.txt")
    assert content_hash(first) != content_hash(second)


def test_local_syncer_failed_copy_leaves_destination_untouched(tmp_path, monkeypatch):
    source = tmp_path / "data.csv"
    source.write_text("new")
    destination = tmp_path / "out" / "data.csv"
    destination.parent.mkdir()
    destination.write_text("old")

    def failing_copy(src, dst, *args, **kwargs):
        Path(dst).write_text("partial")
        raise OSError("disk full")

    monkeypatch.setattr("shutil.copy2", failing_copy)
    with pytest.raises(OSError, match="disk full"):
        LocalSyncer().push(source, str(destination))
    assert destination.read_text() == "old"
    assert leftovers(destination.parent) == []


def test_local_syncer_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        LocalSyncer().push(tmp_path / "missing.csv", str(tmp_path / "x.csv"))
    (tmp_path / "a.csv").write_text("a")
    with pytest.raises(ValueError, match="get_syncer_class_for_url"):
        LocalSyncer().push(tmp_path / "a.csv", "s3://bucket/a.csv")
