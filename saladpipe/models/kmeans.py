"""Spherical k-means with faiss: plain (nearest centroid) or balanced (equal cluster sizes).

Balanced k-means, the paper's choice, keeps a few huge topics from swallowing the
pool: every cluster holds at most ceil(N/K) texts. Its assignment step is a stable
matching with capacities: each text proposes to its clusters from the most similar
down, and a full cluster keeps the texts most similar to it. No text and cluster
would both rather be matched to each other than to what they have, and every
cluster ends within one text of N/K once N/K exceeds K. Centroids are then the
normalised means, as in plain spherical k-means, for `iterations` rounds.
"""

from __future__ import annotations

import numpy as np


def train_spherical(vectors: np.ndarray, k: int, iterations: int, seed: int) -> np.ndarray:
    """Plain spherical k-means centroids (float32 [k, dim], unit length) from faiss."""
    import faiss

    kmeans = faiss.Kmeans(
        vectors.shape[1],
        k,
        niter=iterations,
        seed=seed,
        spherical=True,
        max_points_per_centroid=max(1, -(-vectors.shape[0] // k)),
        verbose=False,
    )
    kmeans.train(np.ascontiguousarray(vectors, dtype=np.float32))
    return np.ascontiguousarray(kmeans.centroids, dtype=np.float32)


def preferences(
    vectors: np.ndarray, centroids: np.ndarray, m: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each text's m most similar centroids, most similar first, with the cosines."""
    import faiss

    index = faiss.IndexFlatIP(centroids.shape[1])
    index.add(np.ascontiguousarray(centroids, dtype=np.float32))
    similarity, nearest = index.search(np.ascontiguousarray(vectors, dtype=np.float32), m)
    return nearest.astype(np.int32), similarity.astype(np.float32)


def capacity(n: int, k: int) -> int:
    """The most texts a balanced cluster may hold."""
    return -(-n // k)


def stable_match(choices: np.ndarray, similarity: np.ndarray, room: np.ndarray) -> np.ndarray:
    """Assign each row to one of its `choices` (best first) without exceeding `room` per cluster.

    Row-proposing deferred acceptance: a cluster over its room keeps the rows most
    similar to it and rejects the rest, who propose to their next choice. Returns the
    cluster of each row, or -1 for a row rejected by all its choices. Deterministic:
    ties go to the lower row index.
    """
    n, m = choices.shape
    assigned = np.full(n, -1, dtype=np.int64)
    value = np.zeros(n, dtype=np.float64)
    pointer = np.zeros(n, dtype=np.int64)
    free = np.arange(n, dtype=np.int64)
    touched = np.zeros(room.size, dtype=bool)
    while free.size:
        assigned[free] = choices[free, pointer[free]]
        value[free] = similarity[free, pointer[free]]
        touched[:] = False
        touched[assigned[free]] = True
        held = np.flatnonzero(assigned >= 0)
        held = held[touched[assigned[held]]]
        # Within a cluster, most similar first; the key keeps clusters apart (|value| <= 1).
        order = held[np.argsort(assigned[held] * 4.0 + (1.0 - value[held]), kind="stable")]
        clusters = assigned[order]
        rank = np.arange(order.size) - np.searchsorted(clusters, clusters, side="left")
        rejected = order[rank >= room[clusters]]
        assigned[rejected] = -1
        pointer[rejected] += 1
        free = rejected[pointer[rejected] < m]
    return assigned


def train_balanced(vectors: np.ndarray, k: int, iterations: int, seed: int) -> np.ndarray:
    """Balanced spherical k-means, started from plain faiss k-means."""
    centroids = train_spherical(vectors, k, iterations, seed)
    room = np.full(k, capacity(vectors.shape[0], k))
    for _ in range(iterations):
        choices, similarity = preferences(vectors, centroids, k)
        assigned = stable_match(choices, similarity, room)
        sums = _cluster_sums(vectors, assigned, k)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        # A cluster left empty (only when N/K < K) keeps its centroid.
        updated = np.where(norms > 0, sums / np.maximum(norms, 1e-12), centroids)
        if np.allclose(updated, centroids, atol=1e-7):
            break
        centroids = np.ascontiguousarray(updated, dtype=np.float32)
    return centroids


def _cluster_sums(vectors: np.ndarray, assigned: np.ndarray, k: int) -> np.ndarray:
    """Sum of the vectors of each cluster (float64 [k, dim]), by one sort and reduceat."""
    order = np.argsort(assigned, kind="stable")
    labels = assigned[order]
    sums = np.zeros((k, vectors.shape[1]), dtype=np.float64)
    present, starts = np.unique(labels, return_index=True)
    sums[present] = np.add.reduceat(vectors[order].astype(np.float64), starts, axis=0)
    return sums
