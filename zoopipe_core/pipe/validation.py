"""Batch validation with a pydantic v2 model.

Records are validated in chunks through one ``TypeAdapter(list[Model])``. When a chunk fails,
only its valid records are validated again. The chunk size follows the observed error rate, so
clean data goes through in whole batches and dirty data rarely pays for a redo.

pydantic turns a ``ValueError`` or ``AssertionError`` raised by a validator into a
``ValidationError`` that names the record; any other exception (``TypeError``, ``KeyError``...)
escapes the whole chunk without saying which record raised it. That chunk is then validated
record by record, so the record that raised becomes a failure of its own and the others go on.
"""

from __future__ import annotations

import functools
import traceback
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, cast

from pydantic import AliasChoices, AliasPath, BaseModel, RootModel, TypeAdapter, ValidationError

# A chunk is sized so that about this fraction of chunks contain a bad record.
_TARGET_FAILING_CHUNKS = 0.05
_MIN_CHUNK = 8


def describe_errors(errors: Sequence[Mapping[str, Any]]) -> list[str]:
    """'field: message' for each pydantic error of one record (its list index already stripped)."""
    messages = []
    for error in errors:
        location = ".".join(str(part) for part in error["loc"][1:])
        messages.append(f"{location}: {error['msg']}" if location else error["msg"])
    return messages


def input_keys(model: type[BaseModel]) -> list[str] | None:
    """The input keys `model` can read, when it ignores every other key: then the records given
    to it need hold only these (the others cost time to build, nothing more). None when the
    model sees the whole record: it keeps or forbids extra keys, or has a model validator that
    runs before the fields are validated (it may read any key).

    Example:
        >>> from pydantic import BaseModel, Field
        >>> class User(BaseModel):
        ...     id: int = Field(alias="userId")
        >>> input_keys(User)
        ['id', 'userId']
    """
    if issubclass(model, RootModel) or model.model_config.get("extra") in ("allow", "forbid"):
        return None
    validators = model.__pydantic_decorators__.model_validators.values()
    if any(v.info.mode in ("before", "wrap") for v in validators):
        return None
    keys: list[str] = []
    for name, field in model.model_fields.items():
        keys.append(name)
        if field.alias:
            keys.append(field.alias)
        alias = field.validation_alias
        choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
        for choice in choices:
            first = choice.path[0] if isinstance(choice, AliasPath) else choice
            if isinstance(first, str):
                keys.append(first)
    return list(dict.fromkeys(keys))


def describe_exception(exc: Exception, action: str = "validation") -> list[str]:
    """The failure of a record whose `action` raised something other than a ValidationError:
    the exception, and where it was raised (the validator's frame, when it is Python code)."""
    message = f"{action} raised {type(exc).__name__}: {exc}"
    frames = traceback.extract_tb(exc.__traceback__)
    if frames and frames[-1].filename != __file__:
        last = frames[-1]
        message += f" (in {last.name}, {last.filename}:{last.lineno})"
    return [message]


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
        annotation: Any = field.annotation
        if field.metadata:
            annotation = Annotated[(field.annotation, *field.metadata)]
        try:
            TypeAdapter(annotation).validate_python(None)
        except Exception:
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

    def validate(
        self, records: list[dict[str, Any]]
    ) -> tuple[list[int], list[Any], list[tuple[int, str, list[str]]]]:
        """Return (indices of valid records, their dumped data, [(index, "validation", messages)])."""
        n = len(records)
        adapter = self.adapter
        models: list[Any] = []
        indices: list[int] = []
        failures: list[tuple[int, str, list[str]]] = []
        size = self._chunk_size(n)
        for start in range(0, n, size):
            chunk = records[start : start + size]
            try:
                models.extend(adapter.validate_python(chunk))
                indices.extend(range(start, start + len(chunk)))
                continue
            except ValidationError as exc:
                by_record: dict[int, list[Mapping[str, Any]]] = {}
                for error in exc.errors(include_url=False):
                    # The first location is the record's index in the chunk (a list).
                    by_record.setdefault(cast(int, error["loc"][0]), []).append(error)
            except Exception:
                self._validate_one_by_one(chunk, range(start, start + len(chunk)), models, indices, failures)
                continue
            for local, errors in by_record.items():
                failures.append((start + local, "validation", describe_errors(errors)))
            good = [i for i in range(len(chunk)) if i not in by_record]
            if good:
                try:
                    models.extend(adapter.validate_python([chunk[i] for i in good]))
                    indices.extend(start + i for i in good)
                except Exception:
                    self._validate_one_by_one(
                        [chunk[i] for i in good], [start + i for i in good], models, indices, failures
                    )
        if n:
            self._error_rate = 0.7 * self._error_rate + 0.3 * (len(failures) / n)
        try:
            return indices, adapter.dump_python(models), failures
        except Exception:
            return self._dump_one_by_one(indices, models, failures)

    def _dump_one_by_one(
        self,
        indices: list[int],
        models: list[Any],
        failures: list[tuple[int, str, list[str]]],
    ) -> tuple[list[int], list[Any], list[tuple[int, str, list[str]]]]:
        """Dump each validated record on its own: one whose dump raises (a field_serializer, a
        model_serializer) fails alone, at stage "serialize"."""
        kept_indices, dumped = [], []
        for index, model in zip(indices, models, strict=True):
            try:
                dumped.extend(self.adapter.dump_python([model]))
                kept_indices.append(index)
            except Exception as exc:
                failures.append((index, "serialize", describe_exception(exc, "model_dump")))
        return kept_indices, dumped, failures

    def _validate_one_by_one(
        self,
        records: list[dict[str, Any]],
        positions: Sequence[int],
        models: list[Any],
        indices: list[int],
        failures: list[tuple[int, str, list[str]]],
    ) -> None:
        """Validate each record on its own (`positions`: their indices in the batch): a record
        whose validation raises (a ValidationError or any other Exception) fails alone.
        BaseExceptions (cancellation) still propagate."""
        adapter = self.adapter
        for index, record in zip(positions, records, strict=True):
            try:
                models.extend(adapter.validate_python([record]))
                indices.append(index)
            except ValidationError as exc:
                failures.append((index, "validation", describe_errors(exc.errors(include_url=False))))
            except Exception as exc:
                failures.append((index, "validation", describe_exception(exc)))
