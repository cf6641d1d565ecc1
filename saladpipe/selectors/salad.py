"""SALAD's cluster weighting: P(c) ∝ P_pool(c) · M(c)^γ, texts uniform inside a cluster."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field

from saladpipe.selectors.base import Ordering, Pool, Strategy, TextInRound
from saladpipe.selectors.cluster_draw import ClusterDraw, explain_cluster_draw
from saladpipe.selectors.errors import SelectionError


def salad_cluster_probability(pool_share: np.ndarray, gap: np.ndarray, gamma: float) -> np.ndarray:
    """P(c) ∝ share(c) · gap(c)^γ, computed in log space so that γ = 50 does not overflow.

    γ = 0 returns the pool's own distribution (0^0 counts as 1); as γ grows the mass
    moves to the cluster with the largest gap (shared equally on a tie). A cluster with
    zero gap gets P(c) = 0 for any γ > 0.
    """
    if not gamma >= 0:
        raise SelectionError(f"gamma must be >= 0, got {gamma}")
    if pool_share.sum() <= 0:
        raise SelectionError("every cluster has zero share of the pool: nothing to weight")
    if gamma == 0:
        return pool_share / pool_share.sum()
    with np.errstate(divide="ignore"):
        log_w = np.log(pool_share) + gamma * np.log(gap)
    if not np.isfinite(log_w).any():
        raise SelectionError(
            "every cluster with texts has zero gap: with gamma > 0 no cluster can be drawn"
        )
    log_w -= log_w[np.isfinite(log_w)].max()
    weights = np.exp(log_w)
    return weights / weights.sum()


class SaladStrategy(Strategy):
    """The paper's active selection: clusters where the student is worse are drawn more.

    P_pool(c) is the share of the *eligible* texts, so that with texts picked in earlier
    rounds or excluded, each remaining text still has a chance proportional to M(c)^γ.
    """

    class Params(Strategy.Params):
        """`[select.salad]`."""

        # γ: 0 draws clusters as the pool holds them; the larger, the more the draw goes
        # to the clusters with the largest gap (docs/selection.md).
        gamma: Annotated[float, Field(ge=0.0)] = 5.0

    name = "salad"
    params: Params

    def __init__(self, gamma: float) -> None:
        if not gamma >= 0:
            raise SelectionError(f"gamma must be >= 0, got {gamma}")
        super().__init__(gamma=gamma)

    def ordering(self, pool: Pool, rng: np.random.Generator) -> Ordering:
        counts = pool.eligible_counts
        share = counts / counts.sum()
        p = salad_cluster_probability(share, pool.cluster_gap, self.params.gamma)
        return ClusterDraw(pool, p, rng)

    def explain(self, text: TextInRound) -> str:
        return explain_cluster_draw(text)
