"""Input and output adapters shipped with the core.

The typed specs a native adapter's ``native_spec()`` returns are public here (see
:mod:`zoopipe_core.adapters.native_spec`), for adapters outside the core.
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

__all__ = [
    "ArrowSink",
    "ArrowSource",
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
