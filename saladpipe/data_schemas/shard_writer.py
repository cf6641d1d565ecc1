"""ShardWriter: Parquet shards sized for audio, rotated by size, renamed into place when done.

Audio bytes are already compressed (FLAC, Opus): the audio column is stored without
Parquet compression or dictionary encoding, which would only cost time. Row groups
are cut at about `row_group_bytes` of data (100 MB by default), the unit readers
fetch at once; a shard is closed and a new one opened once it passes `max_bytes`.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, TypedDict

import pyarrow as pa
import pyarrow.parquet as pq

from saladpipe.data_schemas.tables import conform

DEFAULT_ROW_GROUP_BYTES = 100 * 1024 * 1024
DEFAULT_MAX_SHARD_BYTES = 1024 * 1024 * 1024
_BINARY_COLUMNS = ("audio",)
_MB = 1024 * 1024


@dataclass(frozen=True)
class ShardLimits:
    """How big a row group and a shard may grow (bytes of Arrow data / of file)."""

    max_bytes: int = DEFAULT_MAX_SHARD_BYTES
    row_group_bytes: int = DEFAULT_ROW_GROUP_BYTES

    @classmethod
    def from_mb(cls, max_shard_mb: float, row_group_mb: float) -> ShardLimits:
        return cls(int(max_shard_mb * _MB), int(row_group_mb * _MB))


DEFAULT_LIMITS = ShardLimits()


# The Parquet codecs pyarrow's writers take (the parameter's type in pyarrow-stubs).
Compression = Literal["gzip", "brotli", "lz4", "zstd", "snappy", "none"]


class ParquetOptions(TypedDict):
    """Keyword arguments for `pq.ParquetWriter` / `pq.write_table`."""

    compression: dict[str, Compression]
    use_dictionary: list[str]
    write_statistics: list[str]


def parquet_options(schema: pa.Schema) -> ParquetOptions:
    """No compression or dictionary for audio; zstd and dictionaries for the small columns."""
    names = schema.names
    return {
        "compression": {n: ("none" if n in _BINARY_COLUMNS else "zstd") for n in names},
        "use_dictionary": [n for n in names if n not in _BINARY_COLUMNS],
        "write_statistics": [n for n in names if n not in _BINARY_COLUMNS],
    }


class ShardWriter:
    """Writes tables as `<stem>.parquet` shards in `directory`; a context manager.

    A shard that passes `max_bytes` is closed and the rows go on in `<stem>-001.parquet`,
    `<stem>-002.parquet`, ...: one task's output keeps its task's name unless it is big.

    Each shard is written under a hidden temporary name and renamed when it is
    closed; on an exception every unfinished temporary is removed, so no file that
    looks finished is ever half-written.
    """

    def __init__(
        self,
        directory: Path,
        stem: str,
        schema: pa.Schema,
        max_bytes: int = DEFAULT_MAX_SHARD_BYTES,
        row_group_bytes: int = DEFAULT_ROW_GROUP_BYTES,
    ) -> None:
        self.directory = directory
        self.stem = stem
        self.schema = schema
        self.max_bytes = max_bytes
        self.row_group_bytes = row_group_bytes
        self.paths: list[Path] = []
        self._pending: list[pa.Table] = []
        self._pending_bytes = 0
        self._writer: pq.ParquetWriter | None = None
        self._tmp: Path | None = None

    def __enter__(self) -> ShardWriter:
        self.directory.mkdir(parents=True, exist_ok=True)
        return self

    def write(self, table: pa.Table) -> None:
        """Add rows; they reach disk in row groups of about `row_group_bytes`."""
        if table.num_rows == 0:
            return
        table = conform(table, self.schema)
        step = max(1, self.row_group_bytes * table.num_rows // max(1, table.nbytes))
        for start in range(0, table.num_rows, step):
            part = table.slice(start, step)
            self._pending.append(part)
            self._pending_bytes += part.nbytes
            if self._pending_bytes >= self.row_group_bytes:
                self._flush_row_group()

    def _flush_row_group(self) -> None:
        if not self._pending:
            return
        group = pa.concat_tables(self._pending)
        self._pending, self._pending_bytes = [], 0
        if self._writer is None:
            self._open()
        assert self._writer is not None and self._tmp is not None
        self._writer.write_table(group, row_group_size=group.num_rows)
        if self._tmp.stat().st_size >= self.max_bytes:
            self._close_shard()

    def _open(self) -> None:
        final = self._next_path()
        self._tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        options = parquet_options(self.schema)
        # pyarrow-stubs types use_dictionary as a bool; pyarrow takes a bool or a list of
        # column names, as its docstring says.
        self._writer = pq.ParquetWriter(self._tmp, self.schema, **options)  # type: ignore[arg-type]

    def _next_path(self) -> Path:
        index = len(self.paths)
        suffix = f"-{index:03d}" if index else ""
        return self.directory / f"{self.stem}{suffix}.parquet"

    def _close_shard(self) -> None:
        assert self._writer is not None and self._tmp is not None
        self._writer.close()
        with self._tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        final = self._next_path()
        self._tmp.replace(final)
        self.paths.append(final)
        self._writer, self._tmp = None, None

    def _remove_rotations_beyond(self) -> None:
        """An earlier attempt at this shard may have written more files than this one:
        those would be read as part of the output, so they go."""
        written = set(self.paths)
        earlier = [self.directory / f"{self.stem}.parquet"]
        earlier += self.directory.glob(f"{self.stem}-[0-9][0-9][0-9].parquet")
        for path in earlier:
            if path not in written:
                path.unlink(missing_ok=True)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self._flush_row_group()
            if self._writer is not None:
                self._close_shard()
            self._remove_rotations_beyond()
            return
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
