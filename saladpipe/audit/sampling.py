"""Seeded samples of rows: uniform over a set, or a few per cluster.

The report and the listening export show a bounded sample however large the run;
the same seed gives the same sample.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def sample_rows(candidates: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Up to n of the candidate row indices, uniformly without replacement, sorted."""
    if candidates.size <= n:
        return np.sort(candidates)
    return np.sort(rng.choice(candidates, size=n, replace=False))


def sample_per_cluster(
    clusters: np.ndarray,
    candidates: np.ndarray,
    per_cluster: int,
    order: Sequence[int],
    rng: np.random.Generator,
) -> dict[int, np.ndarray]:
    """Up to `per_cluster` candidate rows of each cluster, drawn cluster by cluster in `order`.

    `clusters` holds every row's cluster; `candidates` are the row indices that may be drawn.
    """
    chosen = clusters[candidates]
    by_cluster = np.argsort(chosen, kind="stable")
    sorted_clusters = chosen[by_cluster]
    samples = {}
    for cluster in order:
        lo, hi = np.searchsorted(sorted_clusters, [cluster, cluster + 1])
        rows = candidates[by_cluster[lo:hi]]
        samples[int(cluster)] = sample_rows(rows, per_cluster, rng)
    return samples
