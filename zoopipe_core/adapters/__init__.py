"""Input and output adapters shipped with the core.

The typed specs a native adapter's ``native_spec()`` returns are public here (see
:mod:`zoopipe_core.adapters.native_spec`), for adapters outside the core, and :class:`~zoopipe_core.adapters.ranged.BlockStream`, the
block-by-block reader a plugin's ranged stream builds on.
"""

from zoopipe_core.adapters.native_spec import (
    ArrowSink,
    ArrowSource,
    CountSink,
    CsvSink,
    CsvSource,
    JsonArraySink,
    JsonArraySource,
    JsonlSink,
    JsonlSource,
    Location,
    NativeSpec,
    ParquetSink,
    ParquetSource,
    PythonSink,
    PythonSource,
    ReadSpec,
    SinkSpec,
    SourceSpec,
)
from zoopipe_core.adapters.ranged import BlockStream

__all__ = [
    "ArrowSink",
    "ArrowSource",
    "BlockStream",
    "CountSink",
    "CsvSink",
    "CsvSource",
    "JsonArraySink",
    "JsonArraySource",
    "JsonlSink",
    "JsonlSource",
    "Location",
    "NativeSpec",
    "ParquetSink",
    "ParquetSource",
    "PythonSink",
    "PythonSource",
    "ReadSpec",
    "SinkSpec",
    "SourceSpec",
]
