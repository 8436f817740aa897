"""What the pure-Python contenders share: the job they run and the per-row loop they all use.

baseline, pandas and polars differ only in how they read the CSV; the validation, the transform
and the writing of both outputs go through ``process_rows`` so the Python work is identical.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pydantic import ValidationError
from workload import UserRecord, transform_row

Counts = tuple[int, int]
"""(valid rows written, invalid rows written): what every contender returns."""

WRITE_BUFFER_BYTES = 1 << 20


@dataclass(frozen=True)
class Job:
    """One contender run: the input file and where its valid and error outputs go."""

    input_path: Path
    valid_path: Path
    errors_path: Path


TimedBody = Callable[[], Counts]
"""What a contender's ``build`` returns: the work to time, nothing set-up-only inside it."""


def open_output(path: Path) -> IO[str]:
    """A UTF-8 text file with a large buffer, so writes are not the thing being measured."""
    return path.open("w", encoding="utf-8", buffering=WRITE_BUFFER_BYTES)


def error_record(row_number: int, raw: dict, exc: ValidationError) -> str:
    """One JSON line saying which data row failed (1-based, header excluded), its text and why."""
    reasons = exc.errors(include_url=False, include_context=False, include_input=False)
    return json.dumps({"row": row_number, "raw": raw, "errors": reasons}, ensure_ascii=False)


def process_rows(
    rows: Iterable[dict], valid_out: IO[str], errors_out: IO[str], first_row_number: int = 1
) -> Counts:
    """Validate, dump, transform and write each row; invalid rows go to ``errors_out`` with the reason."""
    validate = UserRecord.model_validate
    dumps = json.dumps
    write_valid, write_error = valid_out.write, errors_out.write
    valid = errors = 0
    for row_number, raw in enumerate(rows, start=first_row_number):
        try:
            record = validate(raw).model_dump()
        except ValidationError as exc:
            write_error(error_record(row_number, raw, exc) + "\n")
            errors += 1
            continue
        write_valid(dumps(transform_row(record), ensure_ascii=False) + "\n")
        valid += 1
    return valid, errors
