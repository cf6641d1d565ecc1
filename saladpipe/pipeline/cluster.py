"""Cluster: faiss k-means on the embeddings, then each text assigned to its nearest centroid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.errors import ConfigError
from saladpipe.data_schemas.io import atomic_path, write_table
from saladpipe.pipeline.embed import read_embeddings

# faiss trains on at most this many points per centroid; more adds time, not quality.
MAX_POINTS_PER_CENTROID = 256


def fit_centroids(
    embedding_shards: list[Path], k: int, iterations: int, seed: int, out_path: Path
) -> np.ndarray:
    """Train k spherical centroids on a seeded sample of all embeddings; save them as .npy."""
    import faiss

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
    kmeans = faiss.Kmeans(
        vectors.shape[1],
        k,
        niter=iterations,
        seed=seed,
        spherical=True,
        max_points_per_centroid=MAX_POINTS_PER_CENTROID,
        verbose=False,
    )
    kmeans.train(vectors)
    centroids = np.ascontiguousarray(kmeans.centroids, dtype=np.float32)
    with atomic_path(out_path) as tmp, tmp.open("wb") as fh:
        np.save(fh, centroids)
    return centroids


def assign_shard(embedding_shard: Path, centroids: np.ndarray, out_path: Path) -> int:
    """Assign each text of one shard to its most similar centroid; distance = 1 - cosine."""
    import faiss

    text_ids, vectors = read_embeddings(embedding_shard)
    index = faiss.IndexFlatIP(centroids.shape[1])
    index.add(centroids)
    similarity, nearest = index.search(vectors, 1)
    table = pa.table(
        {
            "text_id": text_ids,
            "cluster": pa.array(nearest[:, 0].astype(np.int32)),
            "distance": pa.array((1.0 - similarity[:, 0]).astype(np.float32)),
        }
    )
    write_table(table, out_path, tables.ASSIGNMENTS)
    return table.num_rows
