"""High gap with diversity: a gap-weighted k-center pick inside the high-gap candidates."""

from __future__ import annotations

import math
from typing import Annotated

import numpy as np
from pydantic import Field

from saladpipe.selectors.base import Ordering, Pool, Strategy, TextInRound
from saladpipe.selectors.top_k import ByGap, explain_by_gap


class _GapWeightedKCenter(Ordering):
    """Greedy: next is the candidate maximising gap · (1 − cosine to the nearest pick).

    The first pick is the highest gap; a near-duplicate of a pick scores about 0 and
    comes last. Candidates are the top `factor` × requested texts by gap, topped up from
    the gap order as picks are asked for. Cost: O(picks · candidates · dim).
    """

    def __init__(self, pool: Pool, rng: np.random.Generator, factor: float) -> None:
        assert pool.vectors is not None  # Strategy.select checks this
        self._vectors = pool.vectors
        self._gap = pool.gap
        self._ranked = ByGap(pool, rng)
        self._factor = factor
        # Ties of zero gap still prefer distance: a tiny floor keeps distance in the score.
        self._floor = 1e-12 + 1e-9 * float(pool.gap[pool.eligible_rows].max())
        self._rows = np.zeros(0, dtype=np.int64)
        self._matrix = np.zeros((0, 0), dtype=np.float32)
        self._distance = np.zeros(0, dtype=np.float32)
        self._alive = np.zeros(0, dtype=bool)
        self._picked: list[np.ndarray] = []

    def _grow(self, m: int) -> None:
        new = self._ranked.next(m)
        if new.size == 0:
            return
        vectors = np.ascontiguousarray(self._vectors(new), dtype=np.float32)
        distance = np.full(new.size, 2.0, dtype=np.float32)
        if self._picked:
            distance = 1.0 - (vectors @ np.stack(self._picked).T).max(axis=1)
        self._rows = np.concatenate([self._rows, new])
        self._matrix = vectors if self._matrix.size == 0 else np.vstack([self._matrix, vectors])
        self._distance = np.concatenate([self._distance, distance])
        self._alive = np.concatenate([self._alive, np.ones(new.size, dtype=bool)])

    def next(self, n: int) -> np.ndarray:
        wanted = math.ceil(self._factor * n)
        alive = int(self._alive.sum())
        if alive < wanted:
            self._grow(wanted - alive)
        gap = self._gap[self._rows] + self._floor
        out: list[int] = []
        for _ in range(n):
            if not self._alive.any():
                break
            score = np.where(self._alive, gap * self._distance, -np.inf)
            best = int(np.argmax(score))
            self._alive[best] = False
            out.append(int(self._rows[best]))
            vector = self._matrix[best]
            self._picked.append(vector)
            np.minimum(self._distance, 1.0 - self._matrix @ vector, out=self._distance)
        return np.asarray(out, dtype=np.int64)

    def probability(self, rows: np.ndarray) -> np.ndarray:
        return np.ones(rows.size)


class DiverseStrategy(Strategy):
    """High gap, but not the same thing twice: spreads picks over the embedding space."""

    class Params(Strategy.Params):
        """`[select.diverse]`."""

        # The high-gap candidate set holds this many times the texts to pick.
        candidates: Annotated[float, Field(ge=1.0)] = 4.0

    name = "diverse"
    needs_vectors = True
    params: Params

    def ordering(self, pool: Pool, rng: np.random.Generator) -> Ordering:
        return _GapWeightedKCenter(pool, rng, self.params.candidates)

    def explain(self, text: TextInRound) -> str:
        if text.picked:
            return (
                "the diverse pick takes, among the highest-gap candidates, the text with the "
                "largest gap · (1 − cosine to its nearest earlier pick)"
            )
        if text.gap < float(text.picked_gaps.min()):
            return explain_by_gap(text)
        vectors = text.vectors(np.append(text.picked_rows, text.row))
        similarity = vectors[:-1] @ vectors[-1]
        nearest = int(np.argmax(similarity))
        return (
            "its gap is in the picked range, but the diverse pick prefers texts far from "
            f"those already picked; nearest pick {text.picked_ids[nearest]} "
            f"(cosine {similarity[nearest]:.3f})"
        )
