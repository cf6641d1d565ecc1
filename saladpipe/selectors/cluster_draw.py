"""Drawing clusters by a probability vector, texts uniformly inside, without replacement.

This is the draw SALAD describes: pick a cluster with probability P(c), then a text
uniformly among that cluster's remaining texts, until the budget is spent. A cluster
that runs out is dropped and P renormalised over the rest. The draw is vectorised
exactly: a batch of independent cluster draws from P, with the draws of clusters that
have run out rejected, is the same sequence as drawing one text at a time.
"""

from __future__ import annotations

import numpy as np

from saladpipe.selectors.base import Ordering, Pool, TextInRound
from saladpipe.selectors.errors import SelectionError


class ClusterDraw(Ordering):
    """Rows in the order of SALAD's sequential draw with cluster probabilities `p`."""

    def __init__(self, pool: Pool, p: np.ndarray, rng: np.random.Generator) -> None:
        p = np.asarray(p, dtype=np.float64)
        if p.shape != (pool.num_clusters,) or not np.all(np.isfinite(p)) or np.any(p < 0):
            raise SelectionError("cluster probabilities must be finite, >= 0, one per cluster")
        if p.sum() <= 0:
            raise SelectionError("every cluster has probability 0: nothing can be drawn")
        self._p = p / p.sum()
        self.cluster_probability = self._p
        self._rng = rng
        self._counts = pool.eligible_counts
        self._taken = np.zeros_like(self._counts)
        self._clusters = pool.clusters
        # Each cluster's eligible rows in a random order, clusters one after another.
        rows = pool.eligible_rows
        shuffled = rows[rng.permutation(rows.size)]
        keys = pool.clusters[shuffled]
        if pool.num_clusters <= np.iinfo(np.int16).max:
            keys = keys.astype(np.int16)  # numpy sorts 16-bit keys by radix: linear time
        self._grouped = shuffled[np.argsort(keys, kind="stable")]
        self._starts = np.concatenate([[0], np.cumsum(self._counts)[:-1]])
        self._per_text = self._p / np.maximum(self._counts, 1)

    def next(self, n: int) -> np.ndarray:
        out: list[np.ndarray] = []
        got = 0
        k = self._counts.size
        while got < n:
            live = (self._taken < self._counts) & (self._p > 0)
            if not live.any():
                break
            weights = np.where(live, self._p, 0.0)
            draws = self._rng.choice(k, size=n - got, p=weights / weights.sum())
            # The j-th draw of cluster c in this batch takes its (taken[c] + j)-th text.
            order = np.argsort(draws, kind="stable")
            sorted_draws = draws[order]
            first = np.searchsorted(sorted_draws, sorted_draws, side="left")
            occurrence = np.empty(draws.size, dtype=np.int64)
            occurrence[order] = np.arange(draws.size) - first
            slot = self._taken[draws] + occurrence
            ok = slot < self._counts[draws]
            accepted = draws[ok]
            out.append(self._grouped[self._starts[accepted] + slot[ok]])
            self._taken += np.bincount(accepted, minlength=k)
            got += int(accepted.size)
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def probability(self, rows: np.ndarray) -> np.ndarray:
        """P(c) / eligible texts of c: the chance of a given text at one draw."""
        return self._per_text[self._clusters[rows]]

    def exhausted_note(self) -> str | None:
        left = int((self._counts - self._taken)[self._p == 0].sum())
        if left == 0:
            return None
        return (
            f"every cluster with P(c) > 0 ran out after {int(self._taken.sum())} texts; "
            f"the {left} eligible texts left are in clusters with P(c) = 0 and were not drawn"
        )


def explain_cluster_draw(text: TextInRound) -> str:
    """Why a draw of clusters by P(c), texts uniformly inside, took a text or not."""
    if not text.picked and text.cluster_probability == 0:
        return "its cluster had P(c) = 0, so it was never drawn"
    drawn = "drawn" if text.picked else "not among those drawn"
    return (
        "clusters are drawn by P(c) and texts uniformly inside a drawn cluster; "
        f"this text was {drawn}"
    )
