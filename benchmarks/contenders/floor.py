"""The floor: only the Python work no pipeline can avoid, on rows parsed before the clock starts.

``build`` reads the whole CSV into a list of dicts of strings (untimed). The timed body runs
``model_validate``, ``model_dump`` and ``transform_row`` on each row and nothing else: no parsing,
no serialising, no writing. A pipeline whose hot loop leaves the Python thread with only this
work approaches the floor's rows/s; the runner reports each contender as a fraction of it.
Its peak RSS is not comparable with the others: the whole input is held in memory on purpose.
"""

from __future__ import annotations

import csv

from pydantic import ValidationError
from workload import UserRecord, transform_row

from contenders.common import Job, TimedBody


def build(job: Job) -> TimedBody:
    with job.input_path.open(newline="", encoding="utf-8") as source:
        rows = list(csv.DictReader(source))

    def validate_dump_transform() -> tuple[int, int]:
        validate = UserRecord.model_validate
        valid = errors = 0
        for raw in rows:
            try:
                record = validate(raw).model_dump()
            except ValidationError:
                errors += 1
                continue
            transform_row(record)
            valid += 1
        return valid, errors

    return validate_dump_transform
