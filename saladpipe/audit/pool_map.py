"""A 2-D map of the pool: a seeded sample of its embeddings projected on two PCA axes.

Large pools are sampled by row group: whole row groups, picked at random, are read
until there are several times the wanted points, and the points are drawn uniformly
from those rows. The map's cost is then bounded whatever the pool's size. Selected
texts found in the rows read are drawn on top; centroids share the same axes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from threadpoolctl import threadpool_limits

from saladpipe.audit.sampling import sample_rows
from saladpipe.data_schemas.tables import strings

# Rows read per point drawn; the fewest row groups read when there are more, as long as
# the bytes read stay within the budget (one row group is always read).
_OVERSAMPLE = 4
_MIN_GROUPS = 8
_MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class PoolMap:
    """Projected points with what the chart colours and marks them by."""

    xy: np.ndarray  # (n, 2)
    cluster: np.ndarray
    gap: np.ndarray  # NaN where the run has no gap for the text
    text_id: list[str]
    selected_round: np.ndarray  # -1 for texts that were not selected
    centroids: np.ndarray | None  # (K, 2)
    explained: tuple[float, float]  # share of variance on each axis
    sampled: int  # the first `sampled` points are the uniform sample; the rest selected texts
    rows_read: int
    files_read: int
    files_total: int


@dataclass(frozen=True)
class _Rows:
    text_id: pa.Array
    vectors: np.ndarray
    cluster: np.ndarray
    gap: np.ndarray


def _vectors(column: pa.ChunkedArray) -> np.ndarray:
    # Embeddings are fixed-size lists (tables.embeddings_schema).
    array = cast(pa.FixedSizeListArray, column.combine_chunks())
    width = array.type.list_size
    return np.asarray(array.flatten().to_numpy(), dtype=np.float32).reshape(-1, width)


def _lookup(path: Path | None, column: str, ids: pa.Array, fill: float) -> np.ndarray:
    """Values of `column` for ids, from a table keyed by text_id; `fill` where absent."""
    if path is None or not path.is_file():
        return np.full(len(ids), fill)
    table = pq.read_table(path, columns=["text_id", column])
    position = pc.index_in(ids, value_set=table.column("text_id").combine_chunks())
    values = np.append(table.column(column).to_numpy().astype(np.float64), fill)
    found = np.asarray(position.fill_null(-1).to_numpy(zero_copy_only=False))
    return values[found]  # -1 picks the appended fill


def _pick_groups(
    embeddings: Mapping[int, Path], wanted_rows: int, rng: np.random.Generator
) -> list[tuple[int, pq.ParquetFile, int]]:
    """Row groups in a seeded random order, until enough rows or the byte budget."""
    units: list[tuple[int, pq.ParquetFile, int]] = []
    rows = size = 0
    indices = sorted(embeddings)
    for position in rng.permutation(len(indices)).tolist():
        parquet = pq.ParquetFile(embeddings[indices[position]])
        for group in rng.permutation(parquet.num_row_groups).tolist():
            meta = parquet.metadata.row_group(group)
            enough = rows >= wanted_rows and len(units) >= _MIN_GROUPS
            if units and (enough or size + meta.total_byte_size > _MAX_BYTES):
                return units
            units.append((indices[position], parquet, group))
            rows += meta.num_rows
            size += meta.total_byte_size
    return units


def _read_sample(
    embeddings: Mapping[int, Path],
    assignments: Mapping[int, Path],
    estimates: Mapping[int, Path],
    cluster_gap: np.ndarray,
    wanted_rows: int,
    rng: np.random.Generator,
) -> tuple[_Rows, int]:
    units = _pick_groups(embeddings, wanted_rows, rng)
    by_file: dict[int, list[pa.Table]] = {}
    for index, parquet, group in units:
        table = parquet.read_row_group(group, columns=["text_id", "embedding"])
        by_file.setdefault(index, []).append(table)
    parts = []
    for index, tables in by_file.items():
        table = pa.concat_tables(tables)
        ids = table.column("text_id").combine_chunks()
        cluster = _lookup(assignments.get(index), "cluster", ids, -1).astype(np.int64)
        known = (cluster >= 0) & (cluster < cluster_gap.size)
        gap = np.full(len(ids), np.nan)
        gap[known] = cluster_gap[cluster[known]]
        if index in estimates:
            own = _lookup(estimates[index], "gap", ids, np.nan)
            gap = np.where(np.isnan(own), gap, own)
        parts.append(_Rows(ids, _vectors(table.column("embedding")), cluster, gap))
    return (
        _Rows(
            pa.concat_arrays([p.text_id for p in parts]),
            np.concatenate([p.vectors for p in parts]),
            np.concatenate([p.cluster for p in parts]),
            np.concatenate([p.gap for p in parts]),
        ),
        len(by_file),
    )


def _principal_axes(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """Mean and the first two principal axes (eigenvectors of the D x D scatter matrix,
    cheaper than an SVD of the points), each with its largest component positive."""
    mean = points.mean(axis=0)
    centered = points - mean
    # One BLAS thread: at this size threads only add overhead, ten-fold on a busy machine.
    with threadpool_limits(1):
        scatter = centered.T @ centered
        values, vectors = np.linalg.eigh(scatter)
    order = np.argsort(values)[::-1][:2]
    axes = vectors[:, order].T
    if axes.shape[0] < 2:  # one dimension: a flat second axis
        axes = np.vstack([axes, np.zeros((2 - axes.shape[0], points.shape[1]))])
    signs = np.sign(axes[np.arange(2), np.argmax(np.abs(axes), axis=1)])
    axes = axes * np.where(signs == 0, 1.0, signs)[:, None]
    total = float(np.trace(scatter))
    share = np.concatenate(
        [np.clip(values[order], 0.0, None) / total if total > 0 else [], [0.0, 0.0]]
    )
    return mean, axes, (float(share[0]), float(share[1]))


def build_pool_map(
    embeddings: Mapping[int, Path],
    assignments: Mapping[int, Path],
    estimates: Mapping[int, Path],
    cluster_gap: np.ndarray,
    selected: pa.Table,
    centroids: np.ndarray | None,
    points: int,
    selected_points: int,
    rng: np.random.Generator,
) -> PoolMap | None:
    """Sample, project and label the pool; None when the run kept no embeddings."""
    if not embeddings:
        return None
    rows, files_read = _read_sample(
        embeddings, assignments, estimates, cluster_gap, points * _OVERSAMPLE, rng
    )
    n = len(rows.text_id)
    if n == 0:
        return None
    position = pc.index_in(rows.text_id, value_set=selected.column("text_id").combine_chunks())
    found = np.asarray(position.fill_null(-1).to_numpy(zero_copy_only=False))
    rounds = np.append(selected.column("selection_round").to_numpy(), -1)
    selected_round = rounds[np.where(found >= 0, found, -1)]  # -1: the appended "not selected"
    pool = sample_rows(np.arange(n), points, rng)
    picked = sample_rows(np.setdiff1d(np.flatnonzero(found >= 0), pool), selected_points, rng)
    keep = np.concatenate([pool, picked])
    mean, axes, explained = _principal_axes(rows.vectors[pool].astype(np.float64))
    xy = (rows.vectors[keep] - mean) @ axes.T
    projected = None if centroids is None else (centroids - mean) @ axes.T
    return PoolMap(
        xy=xy,
        cluster=rows.cluster[keep],
        gap=rows.gap[keep],
        text_id=strings(rows.text_id.take(pa.array(keep))),
        selected_round=selected_round[keep],
        centroids=projected,
        explained=explained,
        sampled=int(pool.size),
        rows_read=n,
        files_read=files_read,
        files_total=len(embeddings),
    )
