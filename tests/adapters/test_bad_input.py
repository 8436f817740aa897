"""Bad input: each case either becomes error records (with line and reason) or fails the run
before anything is published, with a message naming the file and the problem."""

from __future__ import annotations

import gzip
import os
import random
import stat

import pytest
from conftest import assert_completed, assert_counts_add_up, assert_nothing_published, count_lines, read_jsonl
from pydantic import BaseModel

from zoopipe_core import (
    CSVInputAdapter,
    CSVOutputAdapter,
    JSONInputAdapter,
    JSONOutputAdapter,
    MemoryOutputAdapter,
    Pipe,
    PipelineError,
    PipeStatus,
    PluginError,
    SingleThreadExecutor,
)


class Row(BaseModel):
    id: int
    name: str


def run_and_fail(pipe: Pipe, *fragments: str) -> PipelineError:
    """Run a pipe that must fail; check the report and that the message names every fragment."""
    with pytest.raises(PipelineError) as info:
        pipe.run()
    report = pipe.report
    assert report.status == PipeStatus.FAILED and report.has_error and report.is_finished
    assert report.exception is info.value
    assert_counts_add_up(report)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return info.value


def file_pipe(source, tmp_path, **kwargs) -> Pipe:
    return Pipe(
        source,
        JSONOutputAdapter(str(tmp_path / "out.jsonl")),
        error_output_adapter=JSONOutputAdapter(str(tmp_path / "errors.jsonl")),
        **kwargs,
    )


# -- the run fails, nothing is published ---------------------------------------------------


def test_missing_file(tmp_path):
    path = str(tmp_path / "nope.csv")
    run_and_fail(file_pipe(CSVInputAdapter(path), tmp_path), path, "not found")
    assert_nothing_published(tmp_path, "out.jsonl", "errors.jsonl")


def test_missing_jsonl_file(tmp_path):
    path = str(tmp_path / "nope.jsonl")
    run_and_fail(file_pipe(JSONInputAdapter(path), tmp_path), path, "not found")
    assert_nothing_published(tmp_path, "out.jsonl", "errors.jsonl")


def test_unreadable_file(tmp_path, write_csv):
    path = write_csv("secret.csv", "id,name\n1,a\n")
    os.chmod(path, 0)
    try:
        if os.access(path, os.R_OK):
            # Running as root: permissions do not stop reading. A path that cannot be read as a
            # file (a directory) exercises the same refusal.
            path = str(tmp_path / "a-directory.csv")
            os.mkdir(path)
            expected = "directory"
        else:
            expected = "not readable"
        run_and_fail(file_pipe(CSVInputAdapter(path), tmp_path), path, expected)
    finally:
        os.chmod(tmp_path / "secret.csv", stat.S_IRUSR | stat.S_IWUSR)
    assert_nothing_published(tmp_path, "out.jsonl", "errors.jsonl")


def test_a_directory_given_as_input(tmp_path):
    path = tmp_path / "data.csv"
    path.mkdir()
    run_and_fail(file_pipe(CSVInputAdapter(str(path)), tmp_path), str(path), "directory")
    assert_nothing_published(tmp_path, "out.jsonl", "errors.jsonl")


def test_empty_csv_file(tmp_path, write_csv):
    path = write_csv("empty.csv", "")
    run_and_fail(file_pipe(CSVInputAdapter(path), tmp_path), path, "empty")
    assert_nothing_published(tmp_path, "out.jsonl", "errors.jsonl")


def test_truncated_gzip(tmp_path):
    path = tmp_path / "big.csv.gz"
    rng = random.Random(1)
    text = "id,name\n" + "".join(f"{i},{rng.random()}\n" for i in range(50_000))
    data = gzip.compress(text.encode())
    path.write_bytes(data[: len(data) * 2 // 3])
    error = run_and_fail(
        file_pipe(CSVInputAdapter(str(path)), tmp_path, executor=SingleThreadExecutor(batch_size=1000)),
        str(path),
        "truncated",
    )
    assert "nothing was published" in str(error)
    assert_nothing_published(tmp_path, "out.jsonl", "errors.jsonl")


def test_truncated_gzip_header_only_stream(tmp_path):
    path = tmp_path / "small.csv.gz"
    data = gzip.compress(b"id,name\n1,a\n2,b\n")
    path.write_bytes(data[:12])
    run_and_fail(file_pipe(CSVInputAdapter(str(path)), tmp_path), str(path))
    assert_nothing_published(tmp_path, "out.jsonl", "errors.jsonl")


def test_truncated_gzip_jsonl(tmp_path):
    path = tmp_path / "big.jsonl.gz"
    data = gzip.compress("".join(f'{{"id": {i}, "v": {i * 7919 % 1000}}}\n' for i in range(50_000)).encode())
    path.write_bytes(data[: len(data) // 2])
    run_and_fail(file_pipe(JSONInputAdapter(str(path)), tmp_path), str(path), "truncated")
    assert_nothing_published(tmp_path, "out.jsonl", "errors.jsonl")


def test_truncated_zstd(tmp_path, write_csv):
    # Written by zoopipe itself (the zstandard module may be absent), then cut short.
    path = write_csv("big.csv", "id,name\n" + "".join(f"{i},{i * 7919 % 10007}\n" for i in range(50_000)))
    whole = tmp_path / "whole.csv.zst"
    assert_completed(Pipe(CSVInputAdapter(path), CSVOutputAdapter(str(whole))).run(), read=50_000)
    cut = tmp_path / "cut.csv.zst"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    run_and_fail(file_pipe(CSVInputAdapter(str(cut)), tmp_path), str(cut), "truncated")
    assert_nothing_published(tmp_path, "out.jsonl", "errors.jsonl")


def test_corrupt_gzip(tmp_path):
    data = bytearray(
        gzip.compress(b"id,name\n" + b"".join(b"%d,%d\n" % (i, i * 31 % 977) for i in range(20_000)))
    )
    data[len(data) // 2] ^= 0xFF
    path = tmp_path / "corrupt.csv.gz"
    path.write_bytes(bytes(data))
    run_and_fail(file_pipe(CSVInputAdapter(str(path)), tmp_path), str(path))
    assert_nothing_published(tmp_path, "out.jsonl", "errors.jsonl")


def test_plain_text_named_gz(tmp_path, write_csv):
    path = tmp_path / "plain.csv.gz"
    path.write_bytes(b"id,name\n1,a\n")
    run_and_fail(file_pipe(CSVInputAdapter(str(path)), tmp_path), str(path), "gzip")
    assert_nothing_published(tmp_path, "out.jsonl", "errors.jsonl")


def test_a_failing_output_publishes_nothing(tmp_path, write_csv):
    path = write_csv("in.csv", "id,name\n1,a\n")
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    pipe = Pipe(
        CSVInputAdapter(path),
        JSONOutputAdapter(str(blocker / "out.jsonl")),
        error_output_adapter=JSONOutputAdapter(str(tmp_path / "errors.jsonl")),
    )
    with pytest.raises((PipelineError, OSError)):
        pipe.run()
    assert pipe.report.status == PipeStatus.FAILED
    assert_counts_add_up(pipe.report)
    assert_nothing_published(tmp_path, "errors.jsonl")


def test_unknown_adapter_name():
    with pytest.raises(PluginError, match="nosuchadapter"):
        Pipe("nosuchadapter", MemoryOutputAdapter())


def test_unknown_suffix(tmp_path):
    path = tmp_path / "data.xyz"
    path.write_text("whatever\n")
    with pytest.raises(PluginError, match=r"data\.xyz") as info:
        Pipe(str(path), MemoryOutputAdapter())
    assert ".csv" in str(info.value)


def test_unknown_output_suffix(tmp_path, write_csv):
    path = write_csv("in.csv", "id,name\n1,a\n")
    with pytest.raises(PluginError, match=r"out\.xyz"):
        Pipe(path, str(tmp_path / "out.xyz"))
    assert_nothing_published(tmp_path, "out.xyz")


# -- bad records become error records; the run completes ----------------------------------


def test_header_only_is_success_with_zero_records(tmp_path, write_csv):
    path = write_csv("header.csv", "id,name\n")
    report = file_pipe(CSVInputAdapter(path), tmp_path, schema_model=Row).run()
    assert_completed(report, read=0, written=0, errors=0)
    assert count_lines(tmp_path / "out.jsonl") == 0
    assert count_lines(tmp_path / "errors.jsonl") == 0


def test_empty_jsonl_file_is_success_with_zero_records(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    report = file_pipe(JSONInputAdapter(str(path)), tmp_path).run()
    assert_completed(report, read=0, written=0, errors=0)
    assert count_lines(tmp_path / "out.jsonl") == 0


def test_ragged_rows(tmp_path, write_csv):
    path = write_csv("ragged.csv", "id,name\n1,a\n2,b,extra\n3\n4,d\n")
    report = file_pipe(CSVInputAdapter(path), tmp_path).run()
    assert_completed(report, read=4, written=2, errors=2)
    assert count_lines(tmp_path / "out.jsonl") == 2
    errors = read_jsonl(tmp_path / "errors.jsonl")
    assert [(e["line"], e["stage"], e["source"]) for e in errors] == [(3, "parse", path), (4, "parse", path)]
    assert "expected 2 fields, found 3" in errors[0]["errors"][0]
    assert "expected 2 fields, found 1" in errors[1]["errors"][0]
    assert errors[0]["record"] == ["2", "b", "extra"]
    assert read_jsonl(tmp_path / "out.jsonl") == [{"id": "1", "name": "a"}, {"id": "4", "name": "d"}]


def test_unbalanced_quote(tmp_path, write_csv):
    path = write_csv("quotes.csv", 'id,name\n1,a\n2,"broken\n3,c\n')
    report = file_pipe(CSVInputAdapter(path), tmp_path).run()
    # The open quote swallows the rest of the file into one record, which cannot be read.
    assert_completed(report, read=2, written=1, errors=1)
    assert count_lines(tmp_path / "out.jsonl") == 1
    (error,) = read_jsonl(tmp_path / "errors.jsonl")
    assert error["line"] == 3 and error["stage"] == "parse"
    assert "unbalanced quote" in error["errors"][0]


def test_invalid_utf8(tmp_path, write_csv):
    path = write_csv("latin1.csv", "id,name\n1,a\n2,caf\xe9\n3,c\n".encode("latin-1"))
    report = file_pipe(CSVInputAdapter(path), tmp_path).run()
    assert_completed(report, read=3, written=2, errors=1)
    assert count_lines(tmp_path / "out.jsonl") == 2
    (error,) = read_jsonl(tmp_path / "errors.jsonl")
    assert error["line"] == 3 and error["stage"] == "parse"
    assert "invalid UTF-8" in error["errors"][0] and '"name"' in error["errors"][0]


def test_invalid_utf8_in_jsonl(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": "caf\xe9"}\n')
    report = file_pipe(JSONInputAdapter(str(path)), tmp_path).run()
    assert_completed(report, read=2, written=1, errors=1)
    (error,) = read_jsonl(tmp_path / "errors.jsonl")
    assert (error["line"], error["stage"]) == (2, "parse") and "invalid UTF-8" in error["errors"][0]


def test_jsonl_lines_that_are_not_objects(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"a": 1}\n[1, 2]\n"text"\n{"a": \n\n{"a": 2}\n')
    report = file_pipe(JSONInputAdapter(str(path)), tmp_path).run()
    assert_completed(report, read=5, written=2, errors=3)
    assert count_lines(tmp_path / "out.jsonl") == 2
    errors = read_jsonl(tmp_path / "errors.jsonl")
    assert [e["line"] for e in errors] == [2, 3, 4]
    assert "expected a JSON object, found array" in errors[0]["errors"][0]
    assert "invalid JSON" in errors[2]["errors"][0]


def test_schema_missing_a_column_fails_every_record_naming_the_field(tmp_path, write_csv):
    path = write_csv("no-name.csv", "id,title\n1,a\n2,b\n")
    report = file_pipe(CSVInputAdapter(path), tmp_path, schema_model=Row).run()
    assert_completed(report, read=2, written=0, errors=2)
    assert count_lines(tmp_path / "out.jsonl") == 0
    errors = read_jsonl(tmp_path / "errors.jsonl")
    assert [(e["line"], e["stage"]) for e in errors] == [(2, "validation"), (3, "validation")]
    for error in errors:
        assert error["errors"] == ["name: Field required"]


def test_bad_records_do_not_stop_the_good_ones_around_them(tmp_path, write_csv):
    lines = ["id,name"]
    for i in range(3000):
        lines.append(f"{i},n{i}" if i % 100 else f"{i},n{i},surplus")
    path = write_csv("many.csv", "\n".join(lines) + "\n")
    report = file_pipe(
        CSVInputAdapter(path), tmp_path, schema_model=Row, executor=SingleThreadExecutor(batch_size=250)
    ).run()
    assert_completed(report, read=3000, written=2970, errors=30)
    assert count_lines(tmp_path / "out.jsonl") == 2970
    assert count_lines(tmp_path / "errors.jsonl") == 30
    assert [e["line"] for e in read_jsonl(tmp_path / "errors.jsonl")] == [i + 2 for i in range(0, 3000, 100)]


def test_csv_output_refuses_a_record_with_an_unknown_field(tmp_path):
    from zoopipe_core import PyGeneratorInputAdapter

    rows = [{"a": 1, "b": 2}, {"a": 3, "c": 4}]
    target = tmp_path / "out.csv"
    errors = MemoryOutputAdapter()
    report = Pipe(
        PyGeneratorInputAdapter(rows), CSVOutputAdapter(str(target)), error_output_adapter=errors
    ).run()
    assert_completed(report, read=2, written=1, errors=1)
    assert target.read_text() == "a,b\n1,2\n"
    assert errors.records[0]["stage"] == "serialize" and '"c"' in errors.records[0]["errors"][0]


def test_a_duplicate_column_in_the_header(tmp_path, write_csv):
    path = write_csv("dup.csv", "id,name,id\n1,a,2\n")
    run_and_fail(file_pipe(CSVInputAdapter(path), tmp_path), path, '"id" appears twice')
    assert_nothing_published(tmp_path, "out.jsonl", "errors.jsonl")


def test_field_names_that_do_not_match_the_header(tmp_path, write_csv):
    path = write_csv("in.csv", "a,b,c\n1,2,3\n")
    run_and_fail(
        file_pipe(CSVInputAdapter(path, field_names=["x", "y"]), tmp_path),
        path,
        "field_names has 2 names but the header has 3 columns",
    )
    assert_nothing_published(tmp_path, "out.jsonl", "errors.jsonl")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"has_header": False}, "needs field_names"),
        ({"delimiter": ";;"}, "single ASCII character"),
        ({"quotechar": "«"}, "single ASCII character"),
    ],
)
def test_csv_options_are_checked_up_front(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CSVInputAdapter("in.csv", **kwargs)


def test_a_python_writer_that_raises_fails_the_run_and_aborts_every_output(tmp_path):
    from zoopipe_core import BatchWriter, OutputAdapter, PyGeneratorInputAdapter

    events: list[str] = []

    class Flaky(BatchWriter):
        def write_batch(self, records):
            if any(r["n"] == 150 for r in records):
                raise ConnectionError("database connection reset")

        def commit(self):
            events.append("commit")

        def abort(self):
            events.append("abort")

    class FlakyOutput(OutputAdapter):
        def open_writer(self):
            return Flaky()

    pipe = Pipe(
        PyGeneratorInputAdapter({"n": i} for i in range(300)),
        FlakyOutput(),
        error_output_adapter=JSONOutputAdapter(str(tmp_path / "errors.jsonl")),
        executor=SingleThreadExecutor(batch_size=50),
    )
    error = run_and_fail(pipe, "database connection reset")
    assert isinstance(error.__cause__, ConnectionError)
    assert events == ["abort"]
    assert pipe.report.success_count < 300
    assert_nothing_published(tmp_path, "errors.jsonl")


def test_a_failed_rerun_leaves_the_previous_output_untouched(tmp_path, write_csv):
    good = write_csv("good.csv", "id,name\n1,a\n2,b\n")
    target = tmp_path / "out.jsonl"
    assert_completed(Pipe(CSVInputAdapter(good), JSONOutputAdapter(str(target))).run(), read=2, written=2)
    before = target.read_bytes()
    data = gzip.compress(("id,name\n" + "".join(f"{i},{i * 7919 % 10007}\n" for i in range(50_000))).encode())
    broken = tmp_path / "broken.csv.gz"
    broken.write_bytes(data[: len(data) // 2])
    run_and_fail(
        Pipe(
            CSVInputAdapter(str(broken)),
            JSONOutputAdapter(str(target)),
            executor=SingleThreadExecutor(batch_size=500),
        ),
        str(broken),
    )
    assert target.read_bytes() == before
    assert_nothing_published(tmp_path)
