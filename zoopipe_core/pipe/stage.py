"""The Python half of a pipe, called by the Rust executor once per batch with the GIL held:
pre-validation transforms, validation, post-validation transforms. It never raises for bad
records; it reports them, with the stage and the reason, so they reach the error output."""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from zoopipe_core.pipe.transforms import TransformLike, apply_transform, transform_name
from zoopipe_core.pipe.validation import BatchValidator

Failure = tuple[int, str, list[str]]


def _transform_failure(transform: TransformLike, exc: BaseException) -> list[str]:
    return [
        f"transform {transform_name(transform)} raised {type(exc).__name__}: {exc}",
        "".join(traceback.format_exception(exc)).rstrip(),
    ]


class BatchStage:
    """Callable by the executor: ``stage(records) -> (indices, outputs, failures)``.

    Example:
        >>> stage = BatchStage(None, [lambda rs: [{**r, "n": 1} for r in rs]], [])
        >>> stage([{"a": "x"}])
        (None, [{'a': 'x', 'n': 1}], [])
    """

    def __init__(
        self,
        schema_model: type[BaseModel] | None,
        pre_validation: Sequence[TransformLike],
        post_validation: Sequence[TransformLike],
    ) -> None:
        self.validator = BatchValidator(schema_model) if schema_model is not None else None
        self.pre = list(pre_validation)
        self.post = list(post_validation)

    def _run(
        self, transforms: list[TransformLike], records: list[Any], indices: list[int] | None
    ) -> tuple[list[Any], list[str] | None]:
        """The records through ``transforms``, and the failure messages if one raised."""
        for transform in transforms:
            try:
                records = apply_transform(transform, records)
            except Exception as exc:
                return records, _transform_failure(transform, exc)
        return records, None

    def __call__(self, records: list[dict[str, Any]]) -> tuple[list[int] | None, list[Any], list[Failure]]:
        indices: list[int] | None = None
        failures: list[Failure] = []
        records, messages = self._run(self.pre, records, indices)
        if messages is not None:
            return [], [], [(i, "transform", messages) for i in range(len(records))]
        if self.validator is not None:
            indices, records, failures = self.validator.validate(records)
        records, messages = self._run(self.post, records, indices)
        if messages is not None:
            remaining = indices if indices is not None else range(len(records))
            return [], [], failures + [(i, "transform", messages) for i in remaining]
        return indices, records, failures
