"""ZooPipe from PyPI (``zoopipe==2026.2.2``, import name ``zoopipe``): an unrelated peer project.

Its Pipe reads the CSV and writes JSONL in its Rust core, validates each batch of 1,000 rows
with ``TypeAdapter(list[Model])`` and then runs post-validation hooks on the batch. The
transform is such a hook. Two things in 2026.2.2 shape the hook (read from its pipe.py and
checked by running it):

* When any row of a batch fails, the whole batch's validation results are dropped: the bad rows
  are marked FAILED, while the good ones stay PENDING without ``validated_data`` and would be
  written as raw CSV text. With about 1% bad rows nearly every batch has one, so the hook
  validates those rows again to give them ``model_dump`` output, as any user must to get correct
  output. This repeat is the package's own cost, not the benchmark's.
* Its writer writes ``validated_data`` only for entries whose status is VALIDATED and
  ``raw_data`` for any other, so the hooks set the status; the error file gets the raw row
  without the reason.

The ``validation="hook"`` variant runs without ``schema_model`` and validates each row inside
the hook: the quickest correct way to use this version, reported next to the documented one.
"""

from __future__ import annotations

import functools

from pydantic import ValidationError
from workload import UserRecord, transform_row
from zoopipe import (
    BaseHook,
    CSVInputAdapter,
    EntryStatus,
    JSONOutputAdapter,
    MultiThreadExecutor,
    Pipe,
    PipeStatus,
    SingleThreadExecutor,
)

from contenders.common import Counts, Job, TimedBody


class TransformAfterSchemaHook(BaseHook):
    """Post-validation hook for a Pipe with ``schema_model``: transform each row that passed."""

    def execute(self, entries, store):
        failed, validated = EntryStatus.FAILED, EntryStatus.VALIDATED
        for entry in entries:
            if entry["status"] is failed:
                continue
            record = entry.get("validated_data")
            if record is None:
                # Left PENDING because another row of its batch failed (see the module docstring).
                record = UserRecord.model_validate(entry["raw_data"]).model_dump()
                entry["status"] = validated
            entry["validated_data"] = transform_row(record)
        return entries


class ValidateAndTransformHook(BaseHook):
    """Post-validation hook for a Pipe without ``schema_model``: validate, dump and transform each row."""

    def execute(self, entries, store):
        validate = UserRecord.model_validate
        failed, validated = EntryStatus.FAILED, EntryStatus.VALIDATED
        for entry in entries:
            try:
                record = validate(entry["raw_data"]).model_dump()
            except ValidationError as exc:
                entry["status"] = failed
                entry["errors"].extend(
                    exc.errors(include_url=False, include_context=False, include_input=False)
                )
                continue
            entry["validated_data"] = transform_row(record)
            entry["status"] = validated
        return entries


def run(job: Job, executor: str, validation: str) -> Counts:
    schema_validation = validation == "schema_model"
    pipe = Pipe(
        input_adapter=CSVInputAdapter(job.input_path),
        output_adapter=JSONOutputAdapter(job.valid_path, format="jsonl"),
        error_output_adapter=JSONOutputAdapter(job.errors_path, format="jsonl"),
        schema_model=UserRecord if schema_validation else None,
        post_validation_hooks=[
            TransformAfterSchemaHook() if schema_validation else ValidateAndTransformHook()
        ],
        executor=MultiThreadExecutor() if executor == "multi" else SingleThreadExecutor(),
    )
    pipe.run(on_report_update=None)  # no progress printing: it is not part of the work
    report = pipe.report
    # run() returns True even when the pipe failed, so the status is the thing to check.
    if report.status is not PipeStatus.COMPLETED:
        raise RuntimeError(f"zoopipe Pipe ended {report.status.value}: {report.exception!r}")
    return report.success_count, report.error_count


def build(job: Job, executor: str = "single", validation: str = "schema_model") -> TimedBody:
    if executor not in ("single", "multi") or validation not in ("schema_model", "hook"):
        raise ValueError(f"unknown options executor={executor!r} validation={validation!r}")
    return functools.partial(run, job, executor, validation)
