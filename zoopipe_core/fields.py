"""Field types for schema models, for values that JSON has no type of its own for.

``Base64Bytes``: a ``bytes`` field that reads the base64 text zoopipe writes to JSON. zoopipe
writes every ``bytes`` value to JSON Lines and JSON arrays (records and error records alike) as
standard base64 (RFC 4648, with padding), whether or not the bytes are UTF-8 text, so a reader
always knows how to get them back. A field declared ``Base64Bytes`` decodes such a string (and
takes bytes as they are, from Parquet or Arrow, say); the validated value is the original bytes,
which the next output writes again as the same base64 text, or as binary in a table.

pydantic's own ``pydantic.Base64Bytes`` decodes the same text, but its ``model_dump()`` returns
the bytes encoded again, so in a pipe (which writes the model's dump) it would write base64 of
the base64 text; use it only to read zoopipe's JSON outside a pipe.

Example:
    >>> from pydantic import BaseModel
    >>> class Blob(BaseModel):
    ...     data: Base64Bytes
    >>> Blob(data="/wBo").data
    b'\\xff\\x00h'
    >>> Blob(data="/wBo").model_dump(), Blob(data="/wBo").model_dump_json()
    ({'data': b'\\xff\\x00h'}, '{"data":"/wBo"}')
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer


def _from_base64(value: Any) -> Any:
    if not isinstance(value, str):
        return value  # bytes (from a table) or anything else: bytes validation decides
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"expected standard base64 text (RFC 4648, padded): {exc}") from None


def _to_base64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


Base64Bytes = Annotated[
    bytes,
    BeforeValidator(_from_base64),
    PlainSerializer(_to_base64, return_type=str, when_used="json"),
]

__all__ = ["Base64Bytes"]
