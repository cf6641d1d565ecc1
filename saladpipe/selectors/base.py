"""One interface for every selection strategy.

A strategy sees the pool as arrays (cluster of each text, gap estimates) and
returns which rows to pick, in draw order, with the probability each had of
being drawn. It never sees texts or files: the pipeline does I/O.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from saladpipe.data_schemas.errors import SaladpipeError


class SelectionError(SaladpipeError):
    """The inputs of a selection are unusable (NaN or negative gaps, empty pool...)."""


@dataclass(frozen=True)
class Pool:
    """What a strategy may look at: one entry per candidate text, one per cluster."""

    clusters: np.ndarray  # int, shape [N], cluster of each text, in 0..K-1
    cluster_gap: np.ndarray  # float, shape [K], misalignment estimate M(c) of each cluster

    def __post_init__(self) -> None:
        k = self.cluster_gap.shape[0]
        if self.clusters.size and (self.clusters.min() < 0 or self.clusters.max() >= k):
            raise SelectionError(f"cluster ids must lie in 0..{k - 1}")
        bad = np.flatnonzero(~np.isfinite(self.cluster_gap))
        if bad.size:
            raise SelectionError(f"cluster gap is not finite for clusters {bad[:10].tolist()}")
        neg = np.flatnonzero(self.cluster_gap < 0)
        if neg.size:
            raise SelectionError(f"cluster gap is negative for clusters {neg[:10].tolist()}")

    @property
    def size(self) -> int:
        return int(self.clusters.size)

    @property
    def num_clusters(self) -> int:
        return int(self.cluster_gap.shape[0])

    def cluster_counts(self) -> np.ndarray:
        return np.bincount(self.clusters, minlength=self.num_clusters)


@dataclass(frozen=True)
class Picks:
    """Chosen rows of the pool in draw order, with their draw probabilities."""

    indices: np.ndarray  # int64 [B], rows of the pool
    probability: np.ndarray  # float64 [B], probability of that row at a single draw
    cluster_probability: np.ndarray  # float64 [K], P(c) the strategy drew clusters with


class Strategy(ABC):
    """Base of all strategies; a subclass registers itself in `saladpipe.selectors.registry`."""

    #: Registry name, also written to every selected row's `strategy` column.
    name: str = ""

    @abstractmethod
    def select(self, pool: Pool, budget: int, rng: np.random.Generator) -> Picks:
        """Pick at most `budget` distinct rows of `pool` (all of them if the pool is smaller)."""


def draw_by_cluster(
    pool: Pool, cluster_probability: np.ndarray, budget: int, rng: np.random.Generator
) -> Picks:
    """Draw clusters with the given probabilities, texts uniformly inside, without replacement.

    Equivalent to drawing one text at a time: pick a cluster by P(c) among the clusters
    that still have texts, then a text uniformly from it. Drawn in multinomial batches so
    that a pool of millions costs a few vector operations, not a Python loop per text.
    """
    counts = pool.cluster_counts()
    remaining = counts.copy()
    taken = np.zeros_like(counts)
    need = min(budget, pool.size)
    while need > 0:
        weights = np.where(remaining > 0, cluster_probability, 0.0)
        total = weights.sum()
        if total <= 0:  # the probable clusters are exhausted: the rest have P(c) = 0
            weights = (remaining > 0).astype(np.float64)
            total = weights.sum()
        draws = rng.multinomial(need, weights / total)
        take = np.minimum(draws, remaining)
        taken += take
        remaining -= take
        need -= int(take.sum())
    order = np.argsort(pool.clusters, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    chosen: list[np.ndarray] = []
    for cluster in np.flatnonzero(taken):
        members = order[starts[cluster] : starts[cluster] + counts[cluster]]
        chosen.append(rng.choice(members, size=int(taken[cluster]), replace=False))
    indices = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
    indices = rng.permutation(indices).astype(np.int64)
    per_text = cluster_probability / np.maximum(counts, 1)
    return Picks(indices, per_text[pool.clusters[indices]], cluster_probability)
