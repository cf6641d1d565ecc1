"""Atomic, schema-checked Parquet I/O.

A file is written under a hidden temporary name in its final folder, flushed to
disk, then renamed into place: a crash never leaves a half-written file under a
name that looks finished.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from saladpipe.data_schemas.tables import check_version, conform


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is fsynced and renamed to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def remove_stale_temporaries(root: Path, keep: Path) -> list[Path]:
    """Remove what writers killed mid-file left under `root` (all but the `keep` folder);
    only safe while holding the run's lock, when no writer of this run is alive."""
    stale = [p for p in root.rglob(".*.tmp-*") if p.is_file() and keep not in p.parents]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def write_table(table: pa.Table, path: Path, schema: pa.Schema, **options: Any) -> Path:
    """Conform `table` to `schema` and write it atomically as Parquet."""
    table = conform(table, schema)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, **options)
    return path


def write_text(text: str, path: Path) -> Path:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def write_text_if_changed(text: str, path: Path) -> Path:
    """Write a text file atomically unless it already holds exactly this text, so that a
    re-run that changes nothing leaves the file untouched."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return path
    except FileNotFoundError:
        pass
    return write_text(text, path)


def read_table(path: Path, schema: pa.Schema, columns: list[str] | None = None) -> pa.Table:
    """Read a Parquet file written by saladpipe, refusing other schema versions."""
    file_schema = pq.read_schema(path)
    check_version(file_schema, str(path))
    table = pq.read_table(path, columns=columns)
    if columns is None:
        return conform(table, schema)
    return table


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
