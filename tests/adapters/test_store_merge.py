"""The core's hook for stores that merge objects themselves: when the syncer serving the output's
scheme (and every part's) has ``merge_objects``, the CSV and JSON Lines mergers hand it the parts
and the offset to copy each from, and read no more than header lines themselves. Exercised here
with a fake store on ``memory://``; S3's real one is tested in tests/plugins/zoopipe_s3."""

from __future__ import annotations

import gzip
from typing import Any, ClassVar

import fsspec
import pytest
from plugin_fakes import plugin_module

from zoopipe_core import CSVOutputAdapter, JSONOutputAdapter, ShardingError, plugins
from zoopipe_core.adapters import merge
from zoopipe_core.adapters.storage import object_merger


class MergingStore:
    """A syncer for memory:// whose store concatenates objects itself, recording each merge."""

    merges: ClassVar[list[tuple[str, list[tuple[str, int]]]]] = []

    @classmethod
    def merge_objects(cls, target: str, parts: list[tuple[str, int]]) -> None:
        cls.merges.append((target, list(parts)))
        fs = fsspec.filesystem("memory")
        fs.pipe(target, b"".join(fs.cat(url)[start:] for url, start in parts))


@pytest.fixture
def merging_store(fresh_plugins: Any, memfs: Any) -> type[MergingStore]:
    def zoopipe_register_syncers(register: Any) -> None:
        register("merging-store", MergingStore, schemes=("memory",))

    plugins.register_plugin(
        plugin_module("merging_store", zoopipe_register_syncers=zoopipe_register_syncers), "ms"
    )
    MergingStore.merges.clear()
    return MergingStore


def write_parts(memfs: Any, target: Any, bodies: list[bytes]) -> list[Any]:
    parts = [merge.shard_output(target, i) for i in range(len(bodies))]
    for part, body in zip(parts, bodies, strict=True):
        memfs.pipe(part.path, body)
    return parts


def test_csv_parts_are_merged_by_the_store_from_after_their_header(merging_store, memfs):
    target = CSVOutputAdapter("memory://bucket/out.csv")
    parts = write_parts(memfs, target, [b"a,b\n1,2\n", b"", b"a,b\n3,4\n5,6\n"])
    merge.merge_outputs(target, parts)
    assert memfs.cat("/bucket/out.csv") == b"a,b\n1,2\n3,4\n5,6\n"
    assert merging_store.merges == [
        ("memory://bucket/out.csv", [(parts[0].path, 0), (parts[2].path, len(b"a,b\n"))])
    ]
    assert not memfs.exists("/bucket/out.part-00000.csv")


def test_csv_parts_without_a_header_are_merged_whole(merging_store, memfs):
    target = CSVOutputAdapter("memory://bucket/out.csv", header=False)
    parts = write_parts(memfs, target, [b"1,2\n", b"3,4\n"])
    merge.merge_outputs(target, parts)
    assert memfs.cat("/bucket/out.csv") == b"1,2\n3,4\n"
    assert merging_store.merges == [("memory://bucket/out.csv", [(parts[0].path, 0), (parts[1].path, 0)])]


def test_a_header_mismatch_is_found_before_the_store_merges(merging_store, memfs):
    target = CSVOutputAdapter("memory://bucket/out.csv")
    parts = write_parts(memfs, target, [b"a,b\n1,2\n", b"a,c\n3,4\n"])
    with pytest.raises(ShardingError, match="has the header"):
        merge.merge_outputs(target, parts)
    assert merging_store.merges == []
    assert not memfs.exists("/bucket/out.csv")


def test_json_lines_parts_are_merged_whole_and_gzip_csv_through_python(merging_store, memfs):
    target = JSONOutputAdapter("memory://bucket/out.jsonl")
    parts = write_parts(memfs, target, [b'{"n":0}\n', b'{"n":1}\n'])
    merge.merge_outputs(target, parts)
    assert memfs.cat("/bucket/out.jsonl") == b'{"n":0}\n{"n":1}\n'
    assert merging_store.merges == [("memory://bucket/out.jsonl", [(parts[0].path, 0), (parts[1].path, 0)])]

    target = CSVOutputAdapter("memory://bucket/out.csv.gz")
    parts = write_parts(memfs, target, [gzip.compress(b"a\n1\n"), gzip.compress(b"a\n2\n")])
    merge.merge_outputs(target, parts)
    assert gzip.decompress(memfs.cat("/bucket/out.csv.gz")) == b"a\n1\n2\n"
    assert len(merging_store.merges) == 1


def test_only_a_store_holding_the_target_and_every_part_merges(merging_store, tmp_path):
    local = str(tmp_path / "out.part-00000.csv")
    assert (
        object_merger("memory://b/out.csv", ["memory://b/out.part-00000.csv"]) == MergingStore.merge_objects
    )
    assert object_merger("memory://b/out.csv", [local]) is None
    assert object_merger(str(tmp_path / "out.csv"), [local]) is None


def test_first_line_reads_a_long_header_in_growing_windows(memfs, monkeypatch):
    monkeypatch.setattr(merge, "HEAD_WINDOW", 4)
    memfs.pipe("/bucket/part.csv", b"a_long_header,b\n1,2\n")
    assert merge.first_line("memory://bucket/part.csv") == b"a_long_header,b\n"
    memfs.pipe("/bucket/one-line.csv", b"no newline at all")
    assert merge.first_line("memory://bucket/one-line.csv") == b"no newline at all"
    memfs.pipe("/bucket/empty.csv", b"")
    assert merge.first_line("memory://bucket/empty.csv") == b""
