"""Column types for a DuckDB table: from a pydantic model where it declares them, otherwise from
the Python values the pipe produced."""

from __future__ import annotations

import base64
import datetime
import decimal
import enum
import types
import typing
import uuid
from typing import Any

from pydantic import BaseModel

_NONE = type(None)

#: The DuckDB type of each Python value type a record may hold (looked up along the MRO).
_VALUE_TYPES: dict[type, str] = {
    bool: "BOOLEAN",
    int: "BIGINT",
    float: "DOUBLE",
    str: "VARCHAR",
    bytes: "BLOB",
    datetime.datetime: "TIMESTAMP",
    datetime.date: "DATE",
    datetime.time: "TIME",
    decimal.Decimal: "DOUBLE",
    uuid.UUID: "UUID",
    dict: "JSON",
    list: "JSON",
    tuple: "JSON",
}
_NUMBERS = {"BIGINT", "DOUBLE"}
#: Types whose values may arrive as text (ISO dates and times, UUIDs), which DuckDB parses.
_FROM_TEXT = {"DATE", "TIME", "TIMESTAMP", "UUID"}


def _enum_type(cls: type[enum.Enum]) -> str:
    values = {type(member.value) for member in cls}
    if values <= {str}:
        return "VARCHAR"
    if values <= {int}:
        return "BIGINT"
    return "JSON"


def value_type(cls: type) -> str:
    """The DuckDB type that holds values of the Python type ``cls``.

    Example:
        >>> value_type(int), value_type(datetime.date), value_type(object)
        ('BIGINT', 'DATE', 'VARCHAR')
    """
    if issubclass(cls, enum.Enum):
        return _enum_type(cls)
    for base in cls.__mro__:
        if base in _VALUE_TYPES:
            return _VALUE_TYPES[base]
    return "VARCHAR"  # written as str(value)


def infer_type(seen: set[type]) -> str | None:
    """The DuckDB type of a column whose values had the Python types ``seen``; None when every
    value was None. Integers mixed with floats are DOUBLE; any other mix is JSON.

    Example:
        >>> infer_type({int, float, type(None)}), infer_type({str, int}), infer_type({type(None)})
        ('DOUBLE', 'JSON', None)
    """
    kinds = {value_type(cls) for cls in seen if cls is not _NONE}
    if not kinds:
        return None
    if kinds == _NUMBERS:
        return "DOUBLE"
    return kinds.pop() if len(kinds) == 1 else "JSON"


def annotation_type(annotation: Any, field: Any = None) -> str | None:
    """The DuckDB type for a pydantic field annotation, or None when it has no single one.

    Example:
        >>> from typing import Optional
        >>> annotation_type(Optional[int]), annotation_type(list[str]), annotation_type(dict[str, int])
        ('BIGINT', 'VARCHAR[]', 'JSON')
    """
    origin = typing.get_origin(annotation)
    args = [arg for arg in typing.get_args(annotation) if arg is not _NONE]
    if origin in (typing.Union, types.UnionType):
        return annotation_type(args[0], field) if len(args) == 1 else None
    if origin is typing.Annotated:
        return annotation_type(args[0], field)
    if origin is typing.Literal:
        kinds = {value_type(type(arg)) for arg in args}
        return kinds.pop() if len(kinds) == 1 else None
    if origin in (list, set, frozenset) or (origin is tuple and len(args) == 2 and args[1] is Ellipsis):
        inner = annotation_type(args[0]) if args else None
        return f"{inner}[]" if inner and not inner.endswith("[]") else "JSON"
    if origin is not None:
        return "JSON" if origin in (dict, tuple) else None
    if not isinstance(annotation, type):
        return None
    if issubclass(annotation, BaseModel):
        return "JSON"
    if issubclass(annotation, decimal.Decimal):
        digits = getattr(field, "metadata", None) and _decimal_constraints(field.metadata)
        return f"DECIMAL({digits[0]}, {digits[1]})" if digits else "DECIMAL(38, 10)"
    if annotation is object:
        return None
    return value_type(annotation)


def _decimal_constraints(metadata: list[Any]) -> tuple[int, int] | None:
    max_digits = next((m.max_digits for m in metadata if getattr(m, "max_digits", None)), None)
    places = next(
        (m.decimal_places for m in metadata if getattr(m, "decimal_places", None) is not None), None
    )
    if max_digits is None or max_digits > 38:
        return None
    return max_digits, places or 0


def model_types(model: type[BaseModel] | None) -> dict[str, str]:
    """Column name → DuckDB type for every field of ``model`` with a single type (by field name
    and by alias, since records may use either).

    Example:
        >>> class User(BaseModel):
        ...     id: int
        ...     name: str | None = None
        >>> model_types(User)
        {'id': 'BIGINT', 'name': 'VARCHAR'}
    """
    columns: dict[str, str] = {}
    if model is None:
        return columns
    for name, field in model.model_fields.items():
        duck = annotation_type(field.annotation, field)
        if duck is not None:
            columns[name] = duck
            if field.alias:
                columns[field.alias] = duck
    return columns


def fits(declared: str, seen: set[type]) -> bool:
    """Whether values of the Python types ``seen`` can be loaded into a ``declared`` column.

    Example:
        >>> fits("DOUBLE", {int, float}), fits("BIGINT", {str}), fits("DATE", {str}), fits("VARCHAR[]", {list})
        (True, False, True, True)
    """
    present = {cls for cls in seen if cls is not _NONE}
    if not present or declared == "JSON":
        return True
    if declared.endswith("[]"):
        return all(issubclass(cls, (list, tuple, set, frozenset)) for cls in present)
    kinds = {value_type(cls) for cls in present}
    if declared == "DOUBLE":
        return kinds <= _NUMBERS
    if declared.startswith("DECIMAL"):
        return kinds <= _NUMBERS | {"VARCHAR"}
    if declared in _FROM_TEXT:  # a validated value reaches the writer as its ISO text
        return kinds <= {declared, "VARCHAR"}
    return kinds == {declared}


def column_types(columns: list[str], seen: dict[str, set[type]], declared: dict[str, str]) -> dict[str, str]:
    """The type of every column: the declared one where the values fit it, else inferred from
    the values (VARCHAR for a column that held only None).

    Example:
        >>> column_types(["id", "tag"], {"id": {str}, "tag": {type(None)}}, {"id": "BIGINT"})
        {'id': 'VARCHAR', 'tag': 'VARCHAR'}
    """
    result = {}
    for column in columns:
        observed = seen.get(column, set())
        if column in declared and fits(declared[column], observed):
            result[column] = declared[column]
        else:
            result[column] = infer_type(observed) or "VARCHAR"
    return result


def encode_json(value: Any) -> Any:
    """``json.dumps(default=...)`` for the values JSON lacks, in forms DuckDB parses back.

    Example:
        >>> import json
        >>> json.dumps({"d": datetime.date(2024, 1, 2), "u": uuid.UUID(int=1)}, default=encode_json)
        '{"d": "2024-01-02", "u": "00000000-0000-0000-0000-000000000001"}'
    """
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):  # loaded with from_base64()
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (set, frozenset)):
        return list(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return str(value)  # Decimal, UUID and anything else: its text
