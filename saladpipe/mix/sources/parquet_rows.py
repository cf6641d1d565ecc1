"""One row of a Parquet file by its index, reading only the row group that holds it.

Consecutive rows of one worker share the read (a small cache of row groups, keyed by
the file's modification time and size too, so a rewritten file is read afresh).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


@functools.lru_cache(maxsize=64)
def _row_group_starts(path: Path, version: tuple[int, int]) -> tuple[int, ...]:
    meta = pq.ParquetFile(path).metadata
    starts, total = [], 0
    for group in range(meta.num_row_groups):
        starts.append(total)
        total += meta.row_group(group).num_rows
    return (*starts, total)


@functools.lru_cache(maxsize=4)
def _column(path: Path, version: tuple[int, int], group: int, column: str) -> pa.ChunkedArray:
    return pq.ParquetFile(path).read_row_group(group, columns=[column]).column(column)


def row_value(path: Path, row: int, column: str) -> Any:
    """The value of `column` in row `row` of the file (FileNotFoundError if it has no such row)."""
    if not path.is_file():
        raise FileNotFoundError(path)
    stat = path.stat()
    version = (stat.st_mtime_ns, stat.st_size)
    starts = _row_group_starts(path, version)
    if not 0 <= row < starts[-1]:
        raise FileNotFoundError(f"{path} has no row {row}")
    group = int(np.searchsorted(starts, row, side="right")) - 1
    return _column(path, version, group, column)[row - starts[group]].as_py()
