"""The baselines: uniform over texts (the paper's `random`) and uniform over clusters."""

from __future__ import annotations

import numpy as np

from saladpipe.selectors.base import Ordering, Pool, Strategy, TextInRound
from saladpipe.selectors.cluster_draw import ClusterDraw, explain_cluster_draw


class _Shuffled(Ordering):
    """The eligible rows in one seeded random permutation."""

    def __init__(self, pool: Pool, rng: np.random.Generator) -> None:
        rows = pool.eligible_rows
        self._rows = rows[rng.permutation(rows.size)]
        self._next = 0
        self._p = 1.0 / rows.size
        self.cluster_probability = pool.eligible_counts / rows.size

    def next(self, n: int) -> np.ndarray:
        out = self._rows[self._next : self._next + n]
        self._next += out.size
        return out

    def probability(self, rows: np.ndarray) -> np.ndarray:
        return np.full(rows.size, self._p)


class RandomStrategy(Strategy):
    """Every eligible text equally likely: the baseline active selection is compared with."""

    name = "random"

    def ordering(self, pool: Pool, rng: np.random.Generator) -> Ordering:
        return _Shuffled(pool, rng)

    def explain(self, text: TextInRound) -> str:
        drawn = "drawn" if text.picked else "not among those drawn"
        return f"a uniform draw over the eligible texts; this text was {drawn}"


class StratifiedStrategy(Strategy):
    """Every cluster that has eligible texts equally likely, texts uniform inside."""

    name = "stratified"

    def ordering(self, pool: Pool, rng: np.random.Generator) -> Ordering:
        return ClusterDraw(pool, (pool.eligible_counts > 0).astype(np.float64), rng)

    def explain(self, text: TextInRound) -> str:
        return explain_cluster_draw(text)
