"""The content store: objects by MD5 in DVC's layout, only missing ones sent, pulls verified and
atomic, on a local directory (the S3 case: tests/plugins/zoopipe_s3/test_offload_s3.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from zoopipe_core.syncers import ContentStore, HashCache, Manifest, StorageError
from zoopipe_core.syncers.store import LOOKUPS_ONE_BY_ONE


def many_files(root: Path, count: int) -> Path:
    for index in range(count):
        path = root / f"d{index % 7}" / f"f{index}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"file {index}\n")
    return root


@pytest.mark.parametrize("count", [3, LOOKUPS_ONE_BY_ONE * 3])
def test_only_missing_objects_are_sent(tmp_path: Path, count: int) -> None:
    """Few objects are looked up one by one, many by listing their prefixes: same answers."""
    data = many_files(tmp_path / "data", count)
    store = ContentStore(str(tmp_path / "store"))
    cache = HashCache(tmp_path / "md5.sqlite")
    manifest = Manifest.of(data, cache)
    assert store.missing(e.md5 for e in manifest.files) == {e.md5 for e in manifest.files}
    assert store.push(data, manifest) == manifest.size
    assert store.missing(e.md5 for e in manifest.files) == set()
    assert store.push(data, manifest) == 0
    (data / "d0" / "f0.txt").write_text("changed\n")
    changed = Manifest.of(data, cache)
    assert store.missing(e.md5 for e in changed.files) == {
        next(e.md5 for e in changed.files if e.relpath == "d0/f0.txt")
    }
    assert store.push(data, changed) == len("changed\n")


def test_a_pull_reuses_unchanged_local_files_and_verifies_the_rest(tmp_path: Path) -> None:
    data = many_files(tmp_path / "data", 5)
    store = ContentStore(str(tmp_path / "store"))
    cache = HashCache(tmp_path / "md5.sqlite")
    manifest = Manifest.of(data, cache)
    store.push(data, manifest)
    assert store.pull(manifest, tmp_path / "copy", cache) == manifest.size
    assert store.pull(manifest, tmp_path / "copy", cache) == 0
    # A corrupt object is refused, and the destination keeps what it had.
    (tmp_path / "copy" / "d1" / "f1.txt").write_text("edited locally\n")
    entry = next(e for e in manifest.files if e.relpath == "d1/f1.txt")
    Path(store.object_path(entry.md5)).write_text("not what was stored\n")
    with pytest.raises(StorageError, match="holds content with MD5"):
        store.pull(manifest, tmp_path / "copy", cache)
    assert (tmp_path / "copy" / "d1" / "f1.txt").read_text() == "edited locally\n"
    assert sorted(p.name for p in tmp_path.iterdir() if "zoopipe-tmp" in p.name) == []


def test_the_directory_hash_and_object_are_dvcs(tmp_path: Path) -> None:
    data = many_files(tmp_path / "data", 2)
    (data / ".git").mkdir()
    (data / ".git" / "HEAD").write_text("ref: x\n")  # DVC leaves .git out of a directory
    manifest = Manifest.of(data, HashCache(tmp_path / "md5.sqlite"))
    assert [e.relpath for e in manifest.files] == ["d0/f0.txt", "d1/f1.txt"]
    store = ContentStore(str(tmp_path / "store"))
    store.push(data, manifest)
    assert store.read_manifest(manifest.hash) == Manifest(
        "dir", tuple(type(e)(e.relpath, e.md5, -1) for e in manifest.files)
    )
    assert Path(store.object_path(manifest.hash)).read_bytes() == manifest.dir_bytes()


def test_a_changed_directory_looks_up_only_its_new_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the hash pushed from the same path before (still stored), its files are known to be
    stored: only the changed file is looked up."""
    data = many_files(tmp_path / "data", LOOKUPS_ONE_BY_ONE * 3)
    store = ContentStore(str(tmp_path / "store"))
    cache = HashCache(tmp_path / "md5.sqlite")
    first = Manifest.of(data, cache)
    store.push(data, first)
    cache.remember_pushed(store.url, data, first.hash)
    (data / "d2" / "f2.txt").write_text("changed\n")
    looked_up: list[set[str]] = []
    original = store.missing
    monkeypatch.setattr(store, "missing", lambda md5s: looked_up.append(set(md5s)) or original(md5s))
    changed = Manifest.of(data, cache)
    assert store.push(data, changed, cache.last_pushed(store.url, data)) == len("changed\n")
    assert [len(md5s) for md5s in looked_up] == [1]
    # A previous directory no longer stored is no evidence: everything is looked up.
    Path(store.object_path(first.hash)).unlink()
    Path(store.object_path(changed.hash)).unlink()
    looked_up.clear()
    assert store.push(data, changed, first.hash) == 0
    assert [len(md5s) for md5s in looked_up] == [len(changed.files)]
