"""The texts nearest each cluster's centroid: what a cluster is about, at a glance.

Assignments are streamed batch by batch keeping the n nearest per cluster, so the
pool's size bounds time, not memory; texts are then read only from the corpus
shards that hold the winners (assignments shard i describes corpus shard i).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

_BATCH = 1 << 17


def _keep_nearest(table: pa.Table, n: int) -> pa.Table:
    table = table.sort_by(
        [("cluster", "ascending"), ("distance", "ascending"), ("text_id", "ascending")]
    )
    clusters = table.column("cluster").to_numpy()
    if clusters.size == 0:
        return table
    starts = np.concatenate([[0], np.flatnonzero(np.diff(clusters)) + 1])
    counts = np.diff(np.concatenate([starts, [clusters.size]]))
    rank = np.arange(clusters.size) - np.repeat(starts, counts)
    return table.filter(pa.array(rank < n))


def nearest_to_centroids(assignments: Mapping[int, Path], n: int) -> pa.Table:
    """text_id, cluster, distance and corpus shard index of the n nearest texts per cluster."""
    best: pa.Table | None = None
    for index, path in sorted(assignments.items()):
        columns = ["text_id", "cluster", "distance"]
        for batch in pq.ParquetFile(path).iter_batches(batch_size=_BATCH, columns=columns):
            part = pa.Table.from_batches([batch])
            part = part.append_column("shard_index", pa.repeat(pa.scalar(index), part.num_rows))
            best = _keep_nearest(part if best is None else pa.concat_tables([best, part]), n)
    if best is None:
        return pa.table(
            {
                "text_id": pa.array([], pa.string()),
                "cluster": pa.array([], pa.int32()),
                "distance": pa.array([], pa.float32()),
                "shard_index": pa.array([], pa.int64()),
            }
        )
    return best


def texts_of(
    corpus: Mapping[int, Path], wanted: Iterable[tuple[int, str]]
) -> dict[str, dict[str, Any]]:
    """Corpus rows (text, domain, ...) of the wanted (corpus shard index, text id) pairs."""
    by_shard: dict[int, list[str]] = {}
    for index, text_id in wanted:
        by_shard.setdefault(index, []).append(text_id)
    found: dict[str, dict[str, Any]] = {}
    for index, ids in by_shard.items():
        if index not in corpus:
            continue
        hits = pq.read_table(corpus[index], filters=[("text_id", "in", ids)])
        found.update({row["text_id"]: row for row in hits.to_pylist()})
    return found
