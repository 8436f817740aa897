"""A Python stage feeding a JSON Lines output writes JSON straight from its output dicts.

The bytes must be exactly those the JSON Lines encoder writes for the same records (the path a
pipe with no Python stage takes), and a record that cannot be written must become the same
serialize error, with the counts adding up.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import uuid

import pytest
from conftest import assert_completed, read_jsonl

from zoopipe_core import JSONOutputAdapter, Pipe, PyGeneratorInputAdapter


class Colour(enum.Enum):
    RED = "red"


class Name(str):
    """A str subclass: written through the general conversion, not the fast path."""


AWKWARD_RECORDS = [
    {
        "text": "plain",
        "quote": 'say "hi"',
        "slash": "a\\b",
        "controls": "\n\r\t\b\f\x00\x1f",
        "unicode": "Ünïcödé ✓ 😀",
    },
    {"long": "x" * 1000 + '"' + "y" * 7, "empty": "", "eight": "12345678", "nine": "123456789\n"},
    {"ints": [0, -1, 2**63 - 1, -(2**63), 2**63, 2**64 - 1], "bools": [True, False], "none": None},
    {"floats": [0.0, -0.0, 0.1, 1e16, 1.5e-7, 123456789.125, 2.0**70, -3.25, 5e-324]},
    {"nested": {"a": [1, {"b": (2, 3)}], "c": {}}, "empty_list": [], "tuple": (1, "two")},
    {
        "date": datetime.date(2024, 2, 29),
        "ts": datetime.datetime(2024, 1, 1, 12, 30, tzinfo=datetime.timezone.utc),
    },
    {"naive": datetime.datetime(2024, 1, 1, 0, 0, 0, 5), "decimal": decimal.Decimal("-12.340")},
    {"enum": Colour.RED, "uuid": uuid.UUID(int=1), "time": datetime.time(1, 2, 3), "sub": Name("subclass")},
    {"bytes": b"raw", "set_free": [b"\xff\x00"]},
]


def identity(batch: list[dict]) -> list[dict]:
    return batch


def run_to_jsonl(records, path, with_stage, errors_path=None):
    return Pipe(
        PyGeneratorInputAdapter(records),
        JSONOutputAdapter(str(path)),
        error_output_adapter=JSONOutputAdapter(str(errors_path)) if errors_path else None,
        post_validation=[identity] if with_stage else [],
    ).run()


def test_stage_output_is_byte_identical_to_the_encoder_output(tmp_path):
    staged, plain = tmp_path / "staged.jsonl", tmp_path / "plain.jsonl"
    assert_completed(run_to_jsonl(AWKWARD_RECORDS, staged, True), read=9, written=9, errors=0)
    assert_completed(run_to_jsonl(AWKWARD_RECORDS, plain, False), read=9, written=9, errors=0)
    assert staged.read_bytes() == plain.read_bytes()
    first = read_jsonl(staged)[0]
    assert first["controls"] == "\n\r\t\b\f\x00\x1f" and first["unicode"] == "Ünïcödé ✓ 😀"


def test_many_batches_keep_input_order_and_every_record(tmp_path):
    records = [{"i": i, "text": "é" * (i % 50)} for i in range(25_000)]
    target = tmp_path / "out.jsonl"
    assert_completed(run_to_jsonl(records, target, True), read=25_000, written=25_000, errors=0)
    assert read_jsonl(target) == records


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"score": float("nan")}, "the float NaN cannot be written as JSON"),
        ({"deep": [{"x": float("inf")}]}, "the float inf cannot be written as JSON"),
        ({"big": 2**64}, 'field "big": TypeError: the integer 18446744073709551616 does not fit in 64 bits'),
        ({"obj": object()}, 'field "obj": TypeError: cannot write a value of type object'),
        ({1: "numeric key"}, "a record's keys must be strings, found 1"),
    ],
)
def test_a_record_that_cannot_be_written_is_a_serialize_error(tmp_path, bad, reason):
    def make_bad(batch: list[dict]) -> list[dict]:
        # The bad value is made by the stage: the input adapter would refuse it when reading.
        return [bad if record == {"bad": True} else record for record in batch]

    target, errors = tmp_path / "out.jsonl", tmp_path / "errors.jsonl"
    report = Pipe(
        PyGeneratorInputAdapter([{"ok": 1}, {"bad": True}, {"ok": 2}]),
        JSONOutputAdapter(str(target)),
        error_output_adapter=JSONOutputAdapter(str(errors)),
        post_validation=[make_bad],
    ).run()
    assert_completed(report, read=3, written=2, errors=1)
    # Nothing of the refused record leaks into the output, not even a partial line.
    assert target.read_text() == '{"ok":1}\n{"ok":2}\n'
    [error] = read_jsonl(errors)
    assert error["stage"] == "serialize" and error["line"] == 2
    assert error["errors"][0].startswith(reason), error["errors"]
    assert error["record"] == {"bad": True}  # the record as read, as for any serialize error
