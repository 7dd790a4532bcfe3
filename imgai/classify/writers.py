"""Tag results written as they come, one result at a time, in any output format.

Both engines feed the same writers: `table`, `csv` and `jsonl` stream line by line, `parquet`
writes a row group every few thousand images, `json` (one list) is written when the run ends.
A file output grows under a temporary name next to its target and is renamed into place when
the run ends; a failed run leaves nothing behind.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path
from typing import IO

from ..errors import ConfigError, require
from .outputs import CSV_HEADER, csv_rows, to_json, to_table
from .tag import TagResult


class ResultWriter:
    """Base: `write(result)` for each result, then `close()`."""

    binary = False

    def __init__(self, stream: IO):
        self.stream = stream

    def write(self, result: TagResult) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class CollectingWriter(ResultWriter):
    """Keeps every result and writes them all at once when the run ends, as `render` makes them."""

    def __init__(self, stream):
        super().__init__(stream)
        self.results: list[TagResult] = []

    def write(self, result):
        self.results.append(result)

    def close(self):
        self.stream.write(self.render(self.results))

    @staticmethod
    def render(results: list[TagResult]) -> str:
        raise NotImplementedError


class TableWriter(CollectingWriter):
    """A table for people, aligned, with a header: written when the run ends (progress shows meanwhile)."""

    render = staticmethod(to_table)


class CsvWriter(ResultWriter):
    def __init__(self, stream):
        super().__init__(stream)
        self.csv = csv.writer(stream)
        self.csv.writerow(CSV_HEADER)

    def write(self, result):
        self.csv.writerows(csv_rows(result))


class JsonLinesWriter(ResultWriter):
    def write(self, result):
        self.stream.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")


class JsonWriter(CollectingWriter):
    """One JSON list, as `imgai tag --format json` always printed: written at the end."""

    render = staticmethod(to_json)


class ParquetWriter(ResultWriter):
    """Columns path (string), tags (list of {label, score, category}), error (string, null when
    tagged), rating ({label, score, category}, null unless the model has a rating category)."""

    binary = True
    ROW_GROUP = 4096

    def __init__(self, stream):
        super().__init__(stream)
        pa = require("pyarrow", extra="ray")
        self.pa = pa
        tag = pa.struct([("label", pa.string()), ("score", pa.float64()), ("category", pa.string())])
        self.schema = pa.schema([("path", pa.string()), ("tags", pa.list_(tag)), ("error", pa.string()),
                                 ("rating", tag)])
        self.pending: list[dict] = []
        self.parquet = None

    def write(self, result):
        self.pending.append(result.to_dict())
        if len(self.pending) >= self.ROW_GROUP:
            self._flush()

    def _flush(self):
        import pyarrow.parquet as pq

        if self.parquet is None:
            self.parquet = pq.ParquetWriter(self.stream, self.schema)
        if self.pending:
            self.parquet.write_table(self.pa.Table.from_pylist(self.pending, schema=self.schema))
            self.pending = []

    def close(self):
        self._flush()
        self.parquet.close()


WRITERS = {"table": TableWriter, "json": JsonWriter, "jsonl": JsonLinesWriter, "csv": CsvWriter,
           "parquet": ParquetWriter}


class ResultFile:
    """`with ResultFile(fmt, output) as writer: writer.write(result)`; stdout when output is None.
    `output` may be a URI (`s3://…`, `gs://…`, `file://…`): the file is written locally, then
    uploaded through pyarrow's filesystems when the run ends."""

    def __init__(self, fmt: str, output: str | Path | None = None):
        if fmt not in WRITERS:
            raise ConfigError(f"format {fmt!r} is not one of {', '.join(WRITERS)}")
        self.kind = WRITERS[fmt]
        if self.kind.binary and output is None:
            raise ConfigError(f"format {fmt!r} is binary; give --output FILE")
        self.uri = str(output) if output is not None and "://" in str(output) else None
        self.output = Path(output) if output is not None and not self.uri else None
        self.tmp: Path | None = None
        self.handle: IO | None = None

    def __enter__(self) -> ResultWriter:
        if self.output is None and self.uri is None:
            self.writer = self.kind(sys.stdout)
            return self.writer
        if self.uri:
            import tempfile

            fd, name = tempfile.mkstemp(prefix="imgai-results-")
            os.close(fd)
            self.tmp = Path(name)
        else:
            self.tmp = self.output.with_name(f".{self.output.name}.tmp")
        self.handle = open(self.tmp, "wb") if self.kind.binary else open(self.tmp, "w", encoding="utf-8", newline="")
        self.writer = self.kind(self.handle)
        return self.writer

    def __exit__(self, exc_type, exc, tb):
        done = False
        try:
            if exc_type is None:
                self.writer.close()
                done = True
        finally:
            if self.handle is not None:
                self.handle.close()
                try:
                    if done and self.uri:
                        upload(self.tmp, self.uri)
                    elif done:
                        self.tmp.replace(self.output)
                finally:
                    if self.uri or not done:
                        self.tmp.unlink(missing_ok=True)
        return False


def upload(local: Path, uri: str) -> None:
    """Copy a finished local file to a URI (s3://, gs://, file://, …) with pyarrow's filesystems."""
    pafs = require("pyarrow.fs", extra="ray")
    try:
        filesystem, path = pafs.FileSystem.from_uri(uri)
        with open(local, "rb") as src, filesystem.open_output_stream(path) as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot write the results to {uri}: {exc}") from exc
