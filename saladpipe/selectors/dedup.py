"""Near-duplicate removal: skip a text too similar to one already kept, in any round."""

from __future__ import annotations

import numpy as np

from saladpipe.selectors.base import VectorLookup
from saladpipe.selectors.errors import SelectionError

# Unit vectors of identical texts can differ in the last float32 bit.
_TOLERANCE = 1e-6


class NearDuplicates:
    """Cosine similarity >= `threshold` to a kept text (or one of `prior_rows`) is a duplicate.

    Kept texts go into an exact faiss inner-product index, so screening costs
    O(screened · kept · dim): exact, and fine for budgets of up to some 10^5 texts.
    """

    def __init__(self, threshold: float, lookup: VectorLookup, prior_rows: np.ndarray) -> None:
        if not 0.0 < threshold <= 1.0:
            raise SelectionError(f"near-duplicate threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold - _TOLERANCE
        self.lookup = lookup
        self._index: object | None = None
        prior = np.asarray(prior_rows, dtype=np.int64)
        if prior.size:
            self.add(prior, lookup(prior))

    def add(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        """Remember kept rows; later texts are screened against them."""
        if rows.size == 0:
            return
        import faiss

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self._index is None:
            self._index = faiss.IndexIDMap(faiss.IndexFlatIP(vectors.shape[1]))
        self._index.add_with_ids(vectors, rows.astype(np.int64))  # type: ignore[attr-defined]

    def screen(
        self, rows: np.ndarray, vectors: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Which rows to keep, in order; for the others the kept row they resemble and how much.

        A row is a duplicate of a remembered row, or of an earlier row of the same block
        that is itself kept. Nothing is remembered here: the caller adds what it keeps.
        """
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        duplicate_of = np.full(rows.size, -1, dtype=np.int64)
        similarity = np.zeros(rows.size, dtype=np.float32)
        if self._index is not None:
            scores, ids = self._index.search(vectors, 1)  # type: ignore[attr-defined]
            hit = scores[:, 0] >= self.threshold
            duplicate_of[hit] = ids[hit, 0]
            similarity[hit] = scores[hit, 0]
        keep = duplicate_of < 0
        within = np.triu(vectors @ vectors.T >= self.threshold, 1)  # [i, j]: i < j and similar
        for j in np.flatnonzero(within.any(axis=0) & keep):
            earlier = np.flatnonzero(within[:j, j] & keep[:j])
            if earlier.size:
                sims = vectors[earlier] @ vectors[j]
                nearest = int(np.argmax(sims))
                keep[j] = False
                duplicate_of[j] = rows[earlier[nearest]]
                similarity[j] = sims[nearest]
        return keep, duplicate_of, similarity
