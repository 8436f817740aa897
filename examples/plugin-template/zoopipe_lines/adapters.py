"""Read and write text files, one record per line, through fsspec (local paths or URLs)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import fsspec

from zoopipe_core.adapters.base import BatchWriter, InputAdapter, OutputAdapter


class LinesInputAdapter(InputAdapter):
    """Reads a text file as records ``{"line_number": n, "text": line}``, numbered from 1.

    ``path`` is a local path or any fsspec URL (``memory://``, ``s3://``...); compressed files
    are decompressed by their suffix.

    Example:
        >>> import fsspec
        >>> with fsspec.open("memory://lines-example/in.txt", "w") as file:
        ...     _ = file.write("alpha\\nbeta\\n")
        >>> adapter = LinesInputAdapter("memory://lines-example/in.txt")
        >>> [record for batch in adapter.iter_batches(10) for record in batch]
        [{'line_number': 1, 'text': 'alpha'}, {'line_number': 2, 'text': 'beta'}]
    """

    name = "lines"

    def __init__(
        self,
        path: str,
        *,
        encoding: str = "utf-8",
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        self.path = str(path)
        self.encoding = encoding
        self.storage_options = dict(storage_options or {})

    @property
    def source_name(self) -> str:
        return self.path

    def iter_batches(self, batch_size: int) -> Iterator[list[dict[str, Any]]]:
        batch: list[dict[str, Any]] = []
        with fsspec.open(
            self.path, "rt", encoding=self.encoding, compression="infer", **self.storage_options
        ) as file:
            for line_number, line in enumerate(file, start=1):
                batch.append({"line_number": line_number, "text": line.removesuffix("\n")})
                if len(batch) >= batch_size:
                    yield batch
                    batch = []
        if batch:
            yield batch


class LinesOutputAdapter(OutputAdapter):
    """Writes one field of each record per line; the file appears only when the run succeeds.

    Example:
        >>> import fsspec
        >>> writer = LinesOutputAdapter("memory://lines-example/out.txt").open_writer()
        >>> writer.write_batch([{"text": "alpha"}, {"text": "beta"}])
        >>> writer.commit()
        >>> fsspec.open("memory://lines-example/out.txt", "rt").open().read()
        'alpha\\nbeta\\n'
    """

    name = "lines"

    def __init__(
        self,
        path: str,
        *,
        field: str = "text",
        encoding: str = "utf-8",
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        self.path = str(path)
        self.field = field
        self.encoding = encoding
        self.storage_options = dict(storage_options or {})

    @property
    def target_name(self) -> str:
        return self.path

    def open_writer(self) -> BatchWriter:
        return LinesWriter(self.path, self.field, self.encoding, self.storage_options)


class LinesWriter(BatchWriter):
    """Writes to a temporary name beside the target; commit renames it, abort deletes it.

    Example:
        >>> import fsspec
        >>> writer = LinesWriter("memory://lines-example/aborted.txt", "text", "utf-8", {})
        >>> writer.write_batch([{"text": "never published"}])
        >>> writer.abort()
        >>> fsspec.filesystem("memory").exists("/lines-example/aborted.txt")
        False
    """

    def __init__(self, path: str, field: str, encoding: str, storage_options: dict[str, Any]) -> None:
        self.field = field
        self.fs, self.final_path = fsspec.core.url_to_fs(path, **storage_options)
        # The ".tmp-" name is unique per writer, so concurrent or crashed runs never collide.
        self.temporary_path = f"{self.final_path}.tmp-{uuid.uuid4().hex}"
        self.file = self.fs.open(self.temporary_path, "w", encoding=encoding)

    def write_batch(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            if self.field not in record:
                raise KeyError(
                    f"record has no field {self.field!r} to write to {self.final_path}; "
                    f"its fields are {sorted(record)}. Pass field=... to LinesOutputAdapter"
                )
            text = str(record[self.field])
            if "\n" in text or "\r" in text:
                raise ValueError(
                    f"field {self.field!r} holds a line break, which a lines file cannot hold "
                    f"({text[:40]!r}); remove it in a transform before {self.final_path}"
                )
            self.file.write(text + "\n")

    def commit(self) -> None:
        self.file.close()
        self.fs.mv(self.temporary_path, self.final_path)

    def abort(self) -> None:
        self.file.close()
        if self.fs.exists(self.temporary_path):
            self.fs.rm(self.temporary_path)
