"""SALAD's cluster weighting: P(c) ∝ P_pool(c) · M(c)^γ, texts uniform inside a cluster."""

from __future__ import annotations

import numpy as np

from saladpipe.selectors.base import Picks, Pool, SelectionError, Strategy, draw_by_cluster


def salad_cluster_probability(pool_share: np.ndarray, gap: np.ndarray, gamma: float) -> np.ndarray:
    """P(c) ∝ share(c) · gap(c)^γ, computed in log space so that γ = 50 does not overflow.

    γ = 0 returns the pool's own distribution (0^0 counts as 1); as γ grows the mass
    moves to the cluster with the largest gap.
    """
    if gamma < 0:
        raise SelectionError(f"gamma must be >= 0, got {gamma}")
    if gamma == 0:
        return pool_share / pool_share.sum()
    with np.errstate(divide="ignore"):
        log_w = np.log(pool_share) + gamma * np.log(gap)
    if not np.isfinite(log_w).any():
        raise SelectionError("every cluster has zero gap or zero share: nothing to weight")
    log_w -= log_w[np.isfinite(log_w)].max()
    weights = np.exp(log_w)
    return weights / weights.sum()


class SaladStrategy(Strategy):
    """The paper's active selection: clusters where the student is worse are drawn more."""

    name = "salad"

    def __init__(self, gamma: float) -> None:
        if gamma < 0:
            raise SelectionError(f"gamma must be >= 0, got {gamma}")
        self.gamma = gamma

    def select(self, pool: Pool, budget: int, rng: np.random.Generator) -> Picks:
        if pool.size == 0:
            raise SelectionError("the pool is empty: nothing to select from")
        counts = pool.cluster_counts()
        share = counts / max(1, counts.sum())
        probability = salad_cluster_probability(share, pool.cluster_gap, self.gamma)
        return draw_by_cluster(pool, probability, budget, rng)
