"""The checkpoint journal of ParallelMap: frames round-trip through real files, keys and function
fingerprints are stable across processes, and a torn, foreign or corrupt journal is handled as
the issue says (skip with a warning, refuse, or fail naming the place)."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import pickle
import subprocess
import sys
import time
import types
import warnings
from pathlib import Path

import pytest

from zoopipe_core.parallel.map.journal import (
    JOURNAL_FORMAT,
    CheckpointMismatch,
    Journal,
    batch_outputs,
    encode_batch,
    encode_entries,
    function_fingerprint,
    function_label,
    item_key,
)

FP = "fp-square"


def frame(*pairs: tuple[object, object]) -> bytes:
    return encode_entries([(item_key(arg), True, value) for arg, value in pairs])


def open_quietly(path: Path, fingerprint: str = FP, name: str = "mod.square") -> Journal:
    """Open a journal, failing on any warning (a clean journal opens silently)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return Journal.open(path, fingerprint, name)


def test_frames_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "square.journal"
    with Journal.open(path, FP, "mod.square") as journal:
        assert journal.recorded == {}
        journal.write(frame((1, 1), (2, 4)))
        journal.write(frame((3, 9)))
        journal.write(encode_entries([(item_key(4), False, ValueError("four"))]))
    header = json.loads(path.read_bytes().split(b"\n")[1])
    assert header["format"] == JOURNAL_FORMAT
    assert header["function"] == "mod.square"
    assert header["fingerprint"] == FP
    assert "T" in header["created"]
    with open_quietly(path) as journal:
        assert {k: v for k, v in journal.recorded.items() if v[0]} == {
            "i:1": (True, 1),
            "i:2": (True, 4),
            "i:3": (True, 9),
        }
        ok, error = journal.recorded["i:4"]
        assert not ok
        assert isinstance(error, ValueError)
        assert str(error) == "four"


def test_reopen_appends_and_reads_all(tmp_path: Path) -> None:
    path = tmp_path / "square.journal"
    with Journal.open(path, FP, "mod.square") as journal:
        journal.write(frame((1, 1)))
    with open_quietly(path) as journal:
        assert journal.recorded == {"i:1": (True, 1)}
        journal.write(frame((2, 4)))
        # A later entry of a key wins (an item retried after a failure recorded earlier).
        journal.write(frame((1, "again")))
    with open_quietly(path) as journal:
        assert journal.recorded == {"i:1": (True, "again"), "i:2": (True, 4)}


def test_write_is_flushed_and_close_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "square.journal"
    journal = Journal.open(path, FP, "mod.square")
    journal.write(frame((1, 1)))
    # Another reader sees the frame while the journal is still open: it was flushed.
    assert open_quietly(path).recorded == {"i:1": (True, 1)}
    journal.close()
    journal.close()
    with pytest.raises(ValueError, match="closed"):
        journal.write(frame((2, 4)))


def test_keys_are_type_tagged_and_equal_for_equal_arguments() -> None:
    keys = {item_key(1), item_key("1"), item_key(1.0), item_key(True), item_key(b"1"), item_key(None)}
    assert len(keys) == 6
    assert item_key((1, "a", (2.5, None))) == item_key((1, "a", (2.5, None)))
    assert item_key((1, 2)) != item_key((1, "2")) != item_key([1, 2])
    assert item_key({"a": 1, "b": {1, 2, 3}}) == item_key({"b": {3, 2, 1}, "a": 1})
    assert item_key({"a": 1}) != item_key({"a": 2})
    # Long strings, bytes and ints are hashed: the key stays short.
    for big in ("x" * 10_000, b"x" * 10_000, 10**5000, tuple(range(1000))):
        assert len(item_key(big)) < 80
        assert item_key(big) == item_key(pickle.loads(pickle.dumps(big)))
    assert item_key("x" * 10_000) != item_key("x" * 10_001)


def test_key_function() -> None:
    assert item_key({"id": 7}, key=lambda d: d["id"]) == "7"
    assert item_key({"id": "a"}, key=lambda d: d["id"]) == "a"
    assert item_key({"id": b"\x01\xff"}, key=lambda d: d["id"]) == "01ff"
    with pytest.raises(TypeError) as info:
        item_key({"id": 7, "payload": "y" * 200}, key=lambda d: [d["id"]])
    message = str(info.value)
    assert "key must return a str, int or bytes" in message
    assert "{'id': 7, 'payload': 'yyy" in message
    assert "y" * 100 not in message  # the argument's repr is cut


def test_unpicklable_argument_asks_for_a_key() -> None:
    with pytest.raises(TypeError, match=r"pass key= to ParallelMap"):
        item_key(lambda: 0)
    assert item_key(lambda: 0, key=lambda f: "the-lambda") == "the-lambda"


MODULE = """
def square(x):
    if x in {"alpha", "beta", "gamma", "delta", "epsilon"}:
        return x
    return [y * y for y in range(x)]
"""

ARGS = (
    "[1, '1', 1.0, (1, 'a'), {'b': {'x', 'y', 'z', 'w'}, 'a': [1, 2]}, "
    "frozenset({'p', 'q', 'r', 's'}), {'k' + str(i): i for i in range(20)}, 'x' * 500]"
)

PROBE = f"""
import functools, json, sys
sys.path.insert(0, sys.argv[1])
import journal_probe_mod as mod
from zoopipe_core.parallel.map.journal import function_fingerprint, item_key
print(json.dumps({{
    "keys": [item_key(a) for a in {ARGS}],
    "fingerprint": function_fingerprint(mod.square),
    "partial": function_fingerprint(functools.partial(mod.square, x={{"p", "q", "r", "s", "t"}})),
}}))
"""


def test_keys_and_fingerprints_are_stable_across_processes(tmp_path: Path) -> None:
    (tmp_path / "journal_probe_mod.py").write_text(MODULE)
    spec = importlib.util.spec_from_file_location("journal_probe_mod", tmp_path / "journal_probe_mod.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    here = {
        "keys": [item_key(a) for a in eval(ARGS)],
        "fingerprint": function_fingerprint(mod.square),
        "partial": function_fingerprint(functools.partial(mod.square, x={"p", "q", "r", "s", "t"})),
    }
    assert here["fingerprint"].startswith("journal_probe_mod.square:")
    # Other string hash seeds: set iteration order differs, the keys and fingerprints must not.
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", PROBE, str(tmp_path)],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        assert json.loads(out.stdout) == here


def test_fingerprint_follows_the_code() -> None:
    def define(body: str) -> types.FunctionType:
        namespace: dict[str, object] = {"__name__": "mod"}
        exec(f"def square(x):\n    return {body}\n", namespace)
        fn = namespace["square"]
        assert isinstance(fn, types.FunctionType)
        return fn

    assert function_fingerprint(define("x * x")) == function_fingerprint(define("x * x"))
    assert function_fingerprint(define("x * x")) != function_fingerprint(define("x * x * x"))
    assert function_fingerprint(define("x * 2")) != function_fingerprint(define("x * 3"))
    # A nested function's code counts too.
    assert function_fingerprint(define("(lambda: x + 1)()")) != function_fingerprint(
        define("(lambda: x + 2)()")
    )


class Scale:
    def __init__(self, factor: int) -> None:
        self.factor = factor

    def __call__(self, x: int) -> int:
        return x * self.factor


def test_fingerprints_and_labels_of_other_callables() -> None:
    assert function_fingerprint(len) == "builtins.len"
    assert function_label(len) == "builtins.len"
    assert function_fingerprint(pow) != function_fingerprint(functools.partial(pow, 2))
    assert function_fingerprint(functools.partial(pow, 2)) == function_fingerprint(functools.partial(pow, 2))
    assert function_fingerprint(functools.partial(pow, exp=2)) != function_fingerprint(
        functools.partial(pow, exp=3)
    )
    assert function_fingerprint(Scale(2)) == function_fingerprint(Scale(3))
    assert "Scale" in function_fingerprint(Scale(2))
    assert function_label(Scale(2)) == f"{__name__}.Scale instance"
    assert function_label(functools.partial(pow, 2)) == "functools.partial(builtins.pow)"
    assert function_label(test_fingerprints_and_labels_of_other_callables) == (
        f"{__name__}.test_fingerprints_and_labels_of_other_callables"
    )
    with pytest.raises(TypeError, match=r"bound arguments do not pickle"):
        function_fingerprint(functools.partial(pow, lambda: 2))


def test_journal_of_another_function_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "square.journal"
    with Journal.open(path, FP, "mod.square") as journal:
        journal.write(frame((1, 1)))
    before = path.read_bytes()
    with pytest.raises(CheckpointMismatch) as info:
        Journal.open(path, "fp-cube", "mod.cube")
    message = str(info.value)
    for words in (
        str(path),
        "mod.square, another function",
        "mod.cube",
        "delete the file",
        "checkpoint_path",
    ):
        assert words in message
    with pytest.raises(CheckpointMismatch, match=r"another version of mod\.square"):
        Journal.open(path, "fp-square-v2", "mod.square")
    assert path.read_bytes() == before


def test_journal_of_another_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "square.journal"
    Journal.open(path, FP, "mod.square").close()
    magic, header, rest = path.read_bytes().split(b"\n", 2)
    fields = json.loads(header)
    fields["format"] = 99
    path.write_bytes(magic + b"\n" + json.dumps(fields).encode() + b"\n" + rest)
    with pytest.raises(
        CheckpointMismatch, match=r"journal format 99; this version of zoopipe reads formats 1 and 2"
    ):
        Journal.open(path, FP, "mod.square")


def test_file_that_is_no_journal_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    path.write_text("id,value\n1,2\n")
    with pytest.raises(CheckpointMismatch, match=r"is not a zoopipe map journal.*delete the file"):
        Journal.open(path, FP, "mod.square")
    assert path.read_text() == "id,value\n1,2\n"


def test_torn_last_frame_is_dropped_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "square.journal"
    with Journal.open(path, FP, "mod.square") as journal:
        journal.write(frame((1, 1), (2, 4)))
    good = path.stat().st_size
    torn = frame((3, 9), (4, 16))
    with open(path, "ab") as f:
        f.write(torn[: len(torn) // 2])
    with pytest.warns(RuntimeWarning) as caught:
        journal = Journal.open(path, FP, "mod.square")
    message = str(caught[0].message)
    assert str(path) in message
    assert f"at byte {good}" in message
    assert f"dropped its {len(torn) // 2} bytes" in message
    with journal:
        assert journal.recorded == {"i:1": (True, 1), "i:2": (True, 4)}
        journal.write(frame((3, 9)))
    with open_quietly(path) as journal:
        assert journal.recorded == {"i:1": (True, 1), "i:2": (True, 4), "i:3": (True, 9)}


def test_frame_cut_inside_its_head_and_crc_failing_last_frame_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "square.journal"
    with Journal.open(path, FP, "mod.square") as journal:
        journal.write(frame((1, 1)))
    with open(path, "ab") as f:
        f.write(frame((2, 4))[:3])
    with pytest.warns(RuntimeWarning, match="frame header is cut short"):
        assert Journal.open(path, FP, "mod.square").recorded == {"i:1": (True, 1)}
    bad = bytearray(frame((2, 4)))
    bad[-1] ^= 0xFF
    with open(path, "ab") as f:
        f.write(bytes(bad))
    with pytest.warns(RuntimeWarning, match="fails its CRC check"):
        assert Journal.open(path, FP, "mod.square").recorded == {"i:1": (True, 1)}
    assert open_quietly(path).recorded == {"i:1": (True, 1)}


def test_torn_header_starts_afresh(tmp_path: Path) -> None:
    path = tmp_path / "square.journal"
    Journal.open(path, FP, "mod.square").close()
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) - 10])
    with pytest.warns(RuntimeWarning, match="header is incomplete"):
        Journal.open(path, FP, "mod.square").close()
    assert open_quietly(path).recorded == {}


def test_corruption_before_the_last_frame_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "square.journal"
    with Journal.open(path, FP, "mod.square") as journal:
        journal.write(frame((1, 1)))
        start = path.stat().st_size
        journal.write(frame((2, 4)))
        journal.write(frame((3, 9)))
    data = bytearray(path.read_bytes())
    data[start + 12] ^= 0xFF  # inside the payload of the second frame
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=rf"{path.name} is corrupt: the frame at byte {start} fails its CRC"):
        Journal.open(path, FP, "mod.square")
    assert path.read_bytes() == bytes(data)  # nothing cut off


def test_unpicklable_value_names_its_key() -> None:
    entries = [(item_key(1), True, 1), (item_key("two"), True, lambda: 2), (item_key(3), True, 3)]
    with pytest.raises(TypeError, match=r"checkpoint key 's:two' does not pickle"):
        encode_entries(entries)


def test_encode_entries_speed() -> None:
    entries = [(f"i:{i}", True, i * i) for i in range(50_000)]
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        encode_entries(entries)
        best = min(best, time.perf_counter() - t0)
    print(f"encode_entries of 50,000 entries: {best * 1000:.1f} ms")


def test_a_batch_frame_round_trips_by_arguments_or_by_keys(tmp_path):
    from zoopipe_core.parallel.map.journal import encode_batch

    long_text = "x" * 200
    path = tmp_path / "batch.journal"
    with Journal.open(path, "fp", "f") as journal:
        journal.write(
            encode_batch([1, "a", None], [10, None, 30], {1: "failed"})
        )  # scalars: stored as they are
        journal.write(encode_batch([long_text, (1, 2)], ["L", "T"], {}))  # keys
        journal.write(encode_batch([{"id": 7}], ["K"], {}, key=lambda d: d["id"]))  # key=
    with Journal.open(path, "fp", "f") as journal:
        recorded = journal.recorded
    assert recorded[item_key(1)] == (True, 10)
    assert recorded[item_key("a")] == (False, "failed")
    assert recorded[item_key(None)] == (True, 30)
    assert recorded[item_key(long_text)] == (True, "L")
    assert recorded[item_key((1, 2))] == (True, "T")
    assert recorded["7"] == (True, "K")


def test_batch_frames_of_every_layout_round_trip(tmp_path: Path) -> None:
    # Consecutive ints are stored by their bounds, other scalars as they are, anything else
    # by key; each reads back to the same (key, ok, value) entries, and batch_outputs gives
    # the values and failures without the keys.
    batches = [
        (range(5, 9), [25, 36, None, 64], {2: "seven failed"}),  # a range slice
        ([5, 6, 7, 8], [25, 36, None, 64], {}),  # the same ints in a list
        ([9, 3, 4], [81, 9, 16], {}),  # ints out of order
        ([True, False], ["t", "f"], {}),  # bools are not ints here
        (["a", 2.5, None], [1, 2, 3], {}),  # mixed scalars
        ([(1, 2), {"x": 1}], ["tuple", "dict"], {}),  # by key
    ]
    path = tmp_path / "j"
    with Journal.open(path, FP, "mod.f") as journal:
        for args, values, failures in batches:
            written = encode_batch(args, values, failures)
            assert batch_outputs(written) == (values, failures)
            journal.write(written)
    expected = {}
    for args, values, failures in batches:
        for i, arg in enumerate(args):
            expected[item_key(arg)] = (False, failures[i]) if i in failures else (True, values[i])
    assert len(expected) == 4 + 3 + 2 + 3 + 2  # the list batch rewrote the range's keys
    with open_quietly(path, name="mod.f") as journal:
        assert journal.recorded == expected


def test_a_range_batch_is_stored_by_its_bounds_not_its_items() -> None:
    values = [0] * 10_000
    as_range, as_list = range(10_000, 20_000), list(range(10_000, 20_000))
    assert len(encode_batch(as_range, values, {})) < len(encode_batch(as_list, values, {})) / 2


def test_a_format_1_journal_is_still_read(tmp_path: Path) -> None:
    path = tmp_path / "old"
    with Journal.open(path, FP, "mod.square") as journal:
        journal.write(frame((1, 1)))
    magic, header, rest = path.read_bytes().split(b"\n", 2)
    fields = json.loads(header)
    fields["format"] = 1
    path.write_bytes(magic + b"\n" + json.dumps(fields).encode() + b"\n" + rest)
    with open_quietly(path) as journal:
        assert journal.recorded == {"i:1": (True, 1)}
