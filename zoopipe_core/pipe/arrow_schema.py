"""The Arrow schema of a pydantic model, as the JSON description the Rust table writers take.

A pipe with a schema model writes Parquet and Arrow outputs with the model's types rather than
types guessed from the first records:

=========================================  ==============================================
field annotation                           Arrow type
=========================================  ==============================================
``int`` / ``float`` / ``str`` / ``bool``   int64 / float64 / utf8 / bool
``bytes``                                  binary
``date``                                   date32
``datetime``, ``AwareDatetime``            timestamp[us, tz=UTC] (naive values taken as UTC)
``NaiveDatetime``                          timestamp[us] (no time zone)
``Decimal`` (``max_digits``,               decimal128(max_digits, decimal_places);
``decimal_places``)                        decimal128(38, 9) without them
``list[T]``, ``tuple[T, ...]``             list<T>
a nested ``BaseModel``                     struct
``T | None``                               nullable T (other fields are not nullable)
``Enum`` / ``Literal``                     the type of its values
=========================================  ==============================================

A model with any other field type (``dict``, unions of several types, ...) gets no schema: the
output's types are then inferred from the records.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import types
import typing
import uuid
from typing import Any

from pydantic import BaseModel

from zoopipe_core.adapters.native_spec import SinkSpec, TableSink

__all__ = ["UnsupportedField", "schema_for_model", "with_model_schema"]


class UnsupportedField(TypeError):
    """A model field whose type has no Arrow equivalent here.

    Example:
        >>> from pydantic import BaseModel
        >>> class Loose(BaseModel):
        ...     extra: dict
        >>> try:
        ...     _fields(Loose)
        ... except UnsupportedField as exc:
        ...     print(exc)
        extra: the type <class 'dict'> has no Arrow equivalent here
        >>> schema_for_model(Loose) is None
        True
    """


_SIMPLE: dict[Any, str] = {
    bool: "bool",
    int: "int64",
    float: "float64",
    str: "utf8",
    bytes: "binary",
    uuid.UUID: "utf8",
    datetime.date: "date32",
}


def _strip_annotated(annotation: Any) -> tuple[Any, list[Any]]:
    metadata: list[Any] = []
    while typing.get_origin(annotation) is typing.Annotated:
        args = typing.get_args(annotation)
        annotation, metadata = args[0], metadata + list(args[1:])
    return annotation, metadata


def _arrow_type(annotation: Any, metadata: list[Any], where: str) -> tuple[Any, bool]:
    """(type description, nullable) of an annotation."""
    annotation, more = _strip_annotated(annotation)
    metadata = metadata + more
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) != 1:
            raise UnsupportedField(f"{where}: a union of several types has no single Arrow type")
        return _arrow_type(args[0], metadata, where)[0], True
    if origin is typing.Literal:
        values = typing.get_args(annotation)
        return _arrow_type(type(values[0]), metadata, where)[0], False
    if origin in (list, tuple, set, frozenset):
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        if len(set(args)) != 1:
            raise UnsupportedField(f"{where}: a list needs one item type")
        item, nullable = _arrow_type(args[0], [], where + "[]")
        return {"list": {"name": "item", "type": item, "nullable": nullable}}, False
    if annotation is datetime.datetime or annotation is _pydantic_types().AwareDatetime:
        return {"timestamp": "us", "tz": "UTC"}, False
    if annotation is _pydantic_types().NaiveDatetime:
        return {"timestamp": "us", "tz": None}, False
    if annotation is decimal.Decimal:
        digits = next((m.max_digits for m in metadata if getattr(m, "max_digits", None) is not None), None)
        places = next(
            (m.decimal_places for m in metadata if getattr(m, "decimal_places", None) is not None), None
        )
        if digits is None:
            return {"decimal128": [38, places if places is not None else 9]}, False
        return {"decimal128": [digits, places or 0]}, False
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        members = [m.value for m in annotation]
        return _arrow_type(type(members[0]), [], where)[0] if members else "utf8", False
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {"struct": _fields(annotation, where + ".")}, False
    for python_type, arrow in _SIMPLE.items():
        if annotation is python_type:
            return arrow, False
    raise UnsupportedField(f"{where}: the type {annotation!r} has no Arrow equivalent here")


def _pydantic_types() -> Any:
    # Imported when a model is mapped, not with the module: pydantic.types costs 12-40 ms,
    # paid by every pipe's first run otherwise (the runner imports this module).
    import pydantic.types

    return pydantic.types


def _fields(model: type[BaseModel], prefix: str = "") -> list[dict[str, Any]]:
    fields = []
    for name, info in model.model_fields.items():
        dtype, nullable = _arrow_type(info.annotation, list(info.metadata), prefix + name)
        fields.append({"name": name, "type": dtype, "nullable": nullable})
    return fields


def schema_for_model(model: type[BaseModel]) -> str | None:
    """The JSON schema description of `model` for the Rust writers; None if a field has no
    Arrow type (the output's types are then inferred).

    Example:
        >>> from pydantic import BaseModel
        >>> class User(BaseModel):
        ...     id: int
        ...     name: str | None
        >>> print(schema_for_model(User).replace("}, ", "},\\n"))
        [{"name": "id", "type": "int64", "nullable": false},
        {"name": "name", "type": "utf8", "nullable": true}]
    """
    try:
        return json.dumps(_fields(model))
    except UnsupportedField:
        return None


def with_model_schema(spec: SinkSpec, model: type[BaseModel] | None, has_post_transforms: bool) -> SinkSpec:
    """A table output (Parquet, Arrow) given the schema of the pipe's model, unless the output
    has its own, or post-validation transforms may reshape the records (types are then
    inferred from the records, with the input table's types as a hint). Other outputs as given.

    Example:
        >>> from pydantic import BaseModel
        >>> from zoopipe_core.adapters.native_spec import ParquetSink
        >>> class Row(BaseModel):
        ...     n: int
        >>> with_model_schema(ParquetSink(url="o.parquet", name="o.parquet"), Row, False).schema
        '[{"name": "n", "type": "int64", "nullable": false}]'
    """
    if model is None or has_post_transforms or not isinstance(spec, TableSink) or spec.schema:
        return spec
    return spec.with_schema(schema_for_model(model))
