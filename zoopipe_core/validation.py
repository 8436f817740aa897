"""Batch validation with a pydantic v2 model.

Records are validated in chunks through one ``TypeAdapter(list[Model])``. When a chunk fails,
only its valid records are validated again. The chunk size follows the observed error rate, so
clean data goes through in whole batches and dirty data rarely pays for a redo.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any

from pydantic import BaseModel, TypeAdapter, ValidationError

# A chunk is sized so that about this fraction of chunks contain a bad record.
_TARGET_FAILING_CHUNKS = 0.05
_MIN_CHUNK = 8


def describe_errors(errors: list[dict[str, Any]]) -> list[str]:
    """'field: message' for each pydantic error of one record (its list index already stripped)."""
    messages = []
    for error in errors:
        location = ".".join(str(part) for part in error["loc"][1:])
        messages.append(f"{location}: {error['msg']}" if location else error["msg"])
    return messages


@functools.lru_cache(maxsize=64)
def not_null_columns(model: type[BaseModel]) -> tuple[str, ...]:
    """The columns (field aliases) of `model` whose field does not accept None.

    A CSV reader keeps an empty field (or a null marker) of these columns as text, so a plain
    `str` field reads `""`; in every other column it reads None (see docs/adapters.md).

    Example:
        >>> from pydantic import BaseModel, Field
        >>> class Row(BaseModel):
        ...     a: int
        ...     b: int | None = None
        ...     c: str = Field(alias="C")
        ...     d: Any
        >>> not_null_columns(Row)
        ('a', 'C')
    """
    columns = []
    for name, field in model.model_fields.items():
        annotation = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
        try:
            TypeAdapter(annotation).validate_python(None)
        except Exception:  # noqa: BLE001 - a validation error, or a type pydantic cannot check alone
            columns.append(field.alias or name)
    return tuple(columns)


class BatchValidator:
    """Validates batches of dicts against a model; returns dumped data and failures.

    Example:
        >>> from pydantic import BaseModel
        >>> class User(BaseModel):
        ...     id: int
        >>> indices, rows, failures = BatchValidator(User).validate([{"id": "1"}, {"id": "x"}])
        >>> indices, rows, failures[0][0]
        ([0], [{'id': 1}], 1)
    """

    def __init__(self, model: type[BaseModel]) -> None:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise TypeError(f"schema_model must be a pydantic BaseModel subclass, got {model!r}")
        self.model = model
        self.adapter: TypeAdapter[list[Any]] = TypeAdapter(list[model])  # type: ignore[valid-type]
        self._error_rate = 0.0

    def _chunk_size(self, n: int) -> int:
        if self._error_rate <= 0:
            return n
        return max(_MIN_CHUNK, min(n, int(_TARGET_FAILING_CHUNKS / self._error_rate)))

    def validate(self, records: list[dict[str, Any]]) -> tuple[list[int], list[Any], list[tuple[int, str, list[str]]]]:
        """Return (indices of valid records, their dumped data, [(index, "validation", messages)])."""
        n = len(records)
        adapter = self.adapter
        models: list[Any] = []
        indices: list[int] = []
        failures: list[tuple[int, str, list[str]]] = []
        size = self._chunk_size(n)
        for start in range(0, n, size):
            chunk = records[start:start + size]
            try:
                models.extend(adapter.validate_python(chunk))
                indices.extend(range(start, start + len(chunk)))
                continue
            except ValidationError as exc:
                by_record: dict[int, list[dict[str, Any]]] = {}
                for error in exc.errors(include_url=False):
                    by_record.setdefault(error["loc"][0], []).append(error)
            for local, errors in by_record.items():
                failures.append((start + local, "validation", describe_errors(errors)))
            good = [i for i in range(len(chunk)) if i not in by_record]
            if good:
                models.extend(adapter.validate_python([chunk[i] for i in good]))
                indices.extend(start + i for i in good)
        if n:
            self._error_rate = 0.7 * self._error_rate + 0.3 * (len(failures) / n)
        return indices, adapter.dump_python(models), failures
