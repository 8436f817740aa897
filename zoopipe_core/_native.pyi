"""Type stub of the Rust extension. Imported by zoopipe_core.pipe.runner (runs) and zoopipe_core.adapters.files (split points)."""

from collections.abc import Callable
from typing import Any

class ExecutionError(Exception): ...
class RunCancelled(ExecutionError): ...

class NativeProgress:
    def __init__(self) -> None: ...
    @property
    def read(self) -> int: ...
    @property
    def success(self) -> int: ...
    @property
    def errors(self) -> int: ...
    @property
    def batches(self) -> int: ...

class StopToken:
    def __init__(self) -> None: ...
    def set(self) -> None: ...
    @property
    def is_set(self) -> bool: ...

def run_pipe(
    source: dict[str, Any],
    output: dict[str, Any],
    errors: dict[str, Any] | None,
    stage: Callable[[list[dict[str, Any]]], tuple[Any, list[Any], list[Any]]] | None,
    batch_size: int,
    encode_workers: int,
    progress: NativeProgress,
    stop: StopToken,
    inline: bool = False,
    input_keys: list[str] | None = None,
) -> dict[str, Any]: ...
def split_points(
    path: str,
    kind: str,
    n: int,
    delimiter: str = ",",
    quotechar: str = '"',
    has_header: bool = True,
) -> list[tuple[int, int, int]]: ...
def record_start(
    window: bytes,
    kind: str,
    expected_fields: int = 0,
    at_eof: bool = False,
    delimiter: str = ",",
    quotechar: str = '"',
) -> int | None: ...
def csv_head(
    window: bytes,
    at_eof: bool = False,
    delimiter: str = ",",
    quotechar: str = '"',
    has_header: bool = True,
) -> tuple[int, int, list[str]] | None: ...
def ipc_file_batch_rows(file: Any) -> list[int]: ...
