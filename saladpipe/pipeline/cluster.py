"""Cluster: faiss k-means on the embeddings, then each text assigned to a cluster.

Plain: each shard's texts go to their nearest centroid, one task per shard.
Balanced: each shard writes its texts' nearest centroids (`preferences_shard`, scratch
files that the flow deletes once the assignments are recorded), then one pass over
the whole pool matches texts to clusters of at most ceil(N/K) texts
(`assign_balanced`); texts whose near clusters are all full are matched among the
clusters with room left, from their full similarity row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.config import ClusterSection
from saladpipe.data_schemas.errors import ConfigError
from saladpipe.data_schemas.io import atomic_path, write_table
from saladpipe.models.embedding import read_embeddings
from saladpipe.models.kmeans import (
    capacity,
    preferences,
    stable_match,
    train_balanced,
    train_spherical,
)
from saladpipe.pipeline.stage import Stage

# faiss trains on at most this many points per centroid; more adds time, not quality.
MAX_POINTS_PER_CENTROID = 256
# Nearest centroids kept per text for the balanced pass over the whole pool.
NEAREST_KEPT = 16


def fit_centroids(
    embedding_shards: list[Path], cluster: ClusterSection, seed: int, out_path: Path
) -> Path:
    """Train k spherical centroids on a seeded sample of all embeddings; save them as .npy."""
    k, iterations = cluster.k, cluster.iterations
    vectors = np.concatenate([read_embeddings(p)[1] for p in embedding_shards])
    if vectors.shape[0] < k:
        raise ConfigError(
            f"config error: cluster.k: {k} clusters for only {vectors.shape[0]} texts; "
            "lower cluster.k"
        )
    rng = np.random.default_rng(seed)
    cap = k * MAX_POINTS_PER_CENTROID
    if vectors.shape[0] > cap:
        vectors = vectors[np.sort(rng.choice(vectors.shape[0], size=cap, replace=False))]
    train = train_balanced if cluster.method == "balanced" else train_spherical
    centroids = train(vectors, k, iterations, seed)
    with atomic_path(out_path) as tmp, tmp.open("wb") as fh:
        np.save(fh, centroids)
    return out_path


def _write_assignments(
    text_ids: pa.Array, cluster: np.ndarray, similarity: np.ndarray, out_path: Path
) -> int:
    table = pa.table(
        {
            "text_id": text_ids,
            "cluster": pa.array(cluster.astype(np.int32)),
            "distance": pa.array((1.0 - similarity).astype(np.float32)),
        }
    )
    write_table(table, out_path, tables.ASSIGNMENTS)
    return table.num_rows


def assign_shard(embedding_shard: Path, centroids_path: Path, out_path: Path) -> Path:
    """Plain: each text of one shard to its most similar centroid; distance = 1 - cosine."""
    text_ids, vectors = read_embeddings(embedding_shard)
    nearest, similarity = preferences(vectors, np.load(centroids_path), 1)
    _write_assignments(text_ids, nearest[:, 0], similarity[:, 0], out_path)
    return out_path


def preferences_shard(embedding_shard: Path, centroids_path: Path, out_path: Path) -> Path:
    """Balanced, per shard: each text's nearest centroids, for the pool-wide matching."""
    _, vectors = read_embeddings(embedding_shard)
    centroids = np.load(centroids_path)
    choices, similarity = preferences(vectors, centroids, min(NEAREST_KEPT, centroids.shape[0]))
    with atomic_path(out_path) as tmp, tmp.open("wb") as fh:
        np.savez(fh, choices=choices, similarity=similarity)
    return out_path


def assign_balanced(
    embedding_shards: list[Path],
    preference_shards: list[Path],
    centroids_path: Path,
    out_paths: list[Path],
) -> list[Path]:
    """Balanced, whole pool: match every text to a cluster of at most ceil(N/K) texts."""
    centroids = np.load(centroids_path)
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    for path in preference_shards:
        with np.load(path) as stored:
            parts.append((stored["choices"], stored["similarity"]))
    choices = np.concatenate([c for c, _ in parts])
    similarity = np.concatenate([s for _, s in parts])
    k = centroids.shape[0]
    room = np.full(k, capacity(choices.shape[0], k))
    assigned = stable_match(choices, similarity, room)
    chosen = np.zeros(assigned.size, dtype=np.float32)
    matched = np.flatnonzero(assigned >= 0)
    chosen[matched] = similarity[matched, np.argmax(choices[matched] == assigned[matched, None], 1)]
    sizes = [0, *np.cumsum([c.shape[0] for c, _ in parts]).tolist()]
    leftover = np.flatnonzero(assigned < 0)
    if leftover.size:
        vectors = _rows_of(embedding_shards, sizes, leftover)
        full_choices, full_similarity = preferences(vectors, centroids, k)
        room_left = room - np.bincount(assigned[matched], minlength=k)
        second = stable_match(full_choices, full_similarity, room_left)
        assigned[leftover] = second
        chosen[leftover] = full_similarity[
            np.arange(leftover.size), np.argmax(full_choices == second[:, None], 1)
        ]
    for index, (shard, out_path) in enumerate(zip(embedding_shards, out_paths, strict=True)):
        text_ids, _ = read_embeddings(shard)
        part = slice(sizes[index], sizes[index + 1])
        _write_assignments(text_ids, assigned[part], chosen[part], out_path)
    return out_paths


FIT = Stage("fit-centroids", fit_centroids, reads=("embedding_shards",), keeps=("out_path",))
ASSIGN = Stage(
    "assign-shard", assign_shard, reads=("embedding_shard", "centroids_path"), keeps=("out_path",)
)
PREFERENCES = Stage(
    "cluster-preferences-shard",
    preferences_shard,
    reads=("embedding_shard", "centroids_path"),
    keeps=("out_path",),
)
BALANCE = Stage(
    "assign-balanced",
    assign_balanced,
    reads=("embedding_shards", "centroids_path"),
    scratch=("preference_shards",),
    keeps=("out_paths",),
)


def _rows_of(embedding_shards: list[Path], offsets: list[int], rows: np.ndarray) -> np.ndarray:
    """Vectors of the given pool-wide rows, reading only the shards that hold them."""
    parts = []
    for index, shard in enumerate(embedding_shards):
        inside = rows[(rows >= offsets[index]) & (rows < offsets[index + 1])]
        if inside.size:
            parts.append(read_embeddings(shard)[1][inside - offsets[index]])
    return np.concatenate(parts)
