"""Transforms: the user's Python work on a batch of records, before or after validation.

A transform is a plain callable ``f(records: list[dict]) -> list[dict] | None`` (None means it
changed the records in place), or a `Transform` with `setup`/`teardown` around the run. It must
return one record per input record: to reject a record, raise, and the batch goes to the
error output with the exception.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Record = dict[str, Any]


class Transform:
    """A transform with resources: `setup()` before the first batch, `teardown()` after the last.

    Example:
        >>> class AddSource(Transform):
        ...     def setup(self): self.tag = "crm"
        ...     def __call__(self, records):
        ...         for r in records: r["source"] = self.tag
        >>> t = AddSource(); t.setup(); rows = [{"id": 1}]; t(rows); rows
        [{'id': 1, 'source': 'crm'}]
    """

    def setup(self) -> None:
        """Open connections, load models. Called once per run, on the worker."""

    def teardown(self) -> None:
        """Release what setup() acquired. Called once per run, even after a failure."""

    def __call__(self, records: list[Record]) -> list[Record] | None:
        raise TypeError(f"{type(self).__name__} must define __call__(self, records)")


TransformLike = Transform | Callable[[list[Record]], Any]


class TransformContractError(Exception):
    """A transform returned something other than one record per input record."""


def transform_name(transform: TransformLike) -> str:
    return getattr(transform, "__qualname__", None) or type(transform).__qualname__


def apply_transform(transform: TransformLike, records: list[Record]) -> list[Record]:
    result = transform(records)
    if result is None:
        return records
    if isinstance(result, dict):  # list(a dict) would be its keys: say what happened instead
        raise TransformContractError(
            f"transform {transform_name(transform)} returned a dict (a single record) for a batch of "
            f"{len(records)} records; a transform takes the batch (a list of dicts) and returns a list "
            "with one record per input, or None after changing the records in place"
        )
    if not isinstance(result, list):
        result = list(result)
    if len(result) != len(records):
        raise TransformContractError(
            f"transform {transform_name(transform)} returned {len(result)} records for a batch of "
            f"{len(records)}; return one record per input (raise to reject records)"
        )
    return result
