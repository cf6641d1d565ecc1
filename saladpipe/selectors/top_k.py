"""The texts with the highest gap estimates first."""

from __future__ import annotations

import numpy as np

from saladpipe.selectors.base import Ordering, Pool, Strategy, TextInRound


class ByGap(Ordering):
    """Eligible rows by descending gap; equal gaps in a seeded random order."""

    def __init__(self, pool: Pool, rng: np.random.Generator) -> None:
        rows = pool.eligible_rows
        shuffled = rows[rng.permutation(rows.size)]
        self._rows = shuffled[np.argsort(-pool.gap[shuffled], kind="stable")]
        self._next = 0

    def next(self, n: int) -> np.ndarray:
        out = self._rows[self._next : self._next + n]
        self._next += out.size
        return out

    def probability(self, rows: np.ndarray) -> np.ndarray:
        return np.ones(rows.size)


class TopKStrategy(Strategy):
    """Greedy on the per-text gap: as much estimated gap per text as the pool offers.

    Without per-text estimates every text of a cluster shares its cluster's gap, so this
    takes the worst cluster first, then the next, in random order inside each.
    """

    name = "top_k"

    def ordering(self, pool: Pool, rng: np.random.Generator) -> Ordering:
        return ByGap(pool, rng)

    def explain(self, text: TextInRound) -> str:
        return explain_by_gap(text)


def explain_by_gap(text: TextInRound) -> str:
    """Why an order by gap, highest first, took a text or not: where the budget ended."""
    lowest = float(text.picked_gaps.min())
    tie = not text.picked and text.gap >= lowest
    return f"picks go by gap, highest first; the budget ended at gap {lowest:.4g}" + (
        " (ties in random order)" if tie else ""
    )
