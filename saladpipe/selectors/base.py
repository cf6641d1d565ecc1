"""One interface for every selection strategy.

A strategy sees the pool as arrays (cluster of each text, gap estimates, which texts
are still eligible) and puts the eligible texts in its order of preference, produced
on demand. The shared `Strategy.select` walks that order, skips near-duplicates and
stops where the budget ends, so every strategy gets budgets, de-duplication and the
same guarantees for free. A strategy never sees texts or files: the pipeline does I/O.

A strategy carries its parameters (`Params`, read from the config table
`[select.<name>]`) and its own words: `explain` says why a finished round picked a
text or passed it over, from what the run folder recorded (`TextInRound`).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from saladpipe.selectors.budget import Budget
from saladpipe.selectors.errors import SelectionError

if TYPE_CHECKING:
    from saladpipe.selectors.dedup import NearDuplicates

#: Unit vectors (float32 [n, dim]) of the given pool rows.
VectorLookup = Callable[[np.ndarray], np.ndarray]

# Rows screened and costed together; bounds the within-block similarity matrix.
_BLOCK = 4096


def _check_gaps(what: str, values: np.ndarray, unit: str) -> None:
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise SelectionError(f"{what} is not finite for {unit} {bad[:10].tolist()}")
    negative = np.flatnonzero(values < 0)
    if negative.size:
        raise SelectionError(f"{what} is negative for {unit} {negative[:10].tolist()}")


@dataclass(frozen=True, eq=False)
class Pool:
    """What a strategy may look at: one entry per text of the pool, one per cluster.

    `text_gap` is each text's own gap estimate; without one a text takes its cluster's
    gap. Texts not `eligible` (picked in an earlier round, excluded) stay in the pool so
    that near-duplicates of them can be recognised, but are never picked.
    """

    clusters: np.ndarray  # int [N], cluster of each text, in 0..K-1
    cluster_gap: np.ndarray  # float [K], misalignment estimate M(c) of each cluster
    text_gap: np.ndarray | None = None  # float [N]
    eligible: np.ndarray | None = None  # bool [N]
    vectors: VectorLookup | None = None

    def __post_init__(self) -> None:
        if self.clusters.ndim != 1 or not np.issubdtype(self.clusters.dtype, np.integer):
            raise SelectionError("pool clusters must be a 1-D integer array")
        if self.cluster_gap.ndim != 1 or self.cluster_gap.size == 0:
            raise SelectionError("the pool needs a gap for at least one cluster")
        k = self.cluster_gap.shape[0]
        if self.clusters.size and (self.clusters.min() < 0 or self.clusters.max() >= k):
            raise SelectionError(f"cluster ids must lie in 0..{k - 1}")
        _check_gaps("cluster gap", self.cluster_gap, "clusters")
        if self.text_gap is not None:
            if self.text_gap.shape != self.clusters.shape:
                raise SelectionError("text gap must have one value per text of the pool")
            _check_gaps("text gap", self.text_gap, "rows")
        if self.eligible is not None and (
            self.eligible.shape != self.clusters.shape or self.eligible.dtype != np.bool_
        ):
            raise SelectionError("eligible must be a boolean array with one value per text")

    @property
    def size(self) -> int:
        return int(self.clusters.size)

    @property
    def num_clusters(self) -> int:
        return int(self.cluster_gap.shape[0])

    @cached_property
    def gap(self) -> np.ndarray:
        """Each text's gap: its own estimate, else its cluster's."""
        if self.text_gap is not None:
            return self.text_gap
        return self.cluster_gap[self.clusters]

    @cached_property
    def eligible_rows(self) -> np.ndarray:
        """Rows that may be picked, ascending (int64)."""
        if self.eligible is None:
            return np.arange(self.size, dtype=np.int64)
        return np.flatnonzero(self.eligible).astype(np.int64)

    @cached_property
    def eligible_counts(self) -> np.ndarray:
        """Eligible texts per cluster, [K]."""
        clusters = self.clusters if self.eligible is None else self.clusters[self.eligible]
        return np.bincount(clusters, minlength=self.num_clusters)

    def cluster_counts(self) -> np.ndarray:
        """Texts per cluster in the whole pool, eligible or not."""
        return np.bincount(self.clusters, minlength=self.num_clusters)


@dataclass(frozen=True, eq=False)
class Picks:
    """Chosen rows in pick order (rank = position), and the near-duplicates skipped."""

    indices: np.ndarray  # int64 [B], rows of the pool
    probability: np.ndarray  # float64 [B], each row's probability at a single draw
    cost: np.ndarray  # float64 [B], each row's share of the budget
    cluster_probability: np.ndarray  # float64 [K], P(c) (deterministic strategies: pick share)
    duplicates: np.ndarray  # int64, rows skipped as near-duplicates, in the order met
    duplicate_of: np.ndarray  # int64, the kept row (this round or earlier) each resembles
    duplicate_similarity: np.ndarray  # float32, their cosine similarity
    notes: tuple[str, ...] = ()

    @property
    def spent(self) -> float:
        return float(self.cost.sum())


class Ordering(ABC):
    """A strategy's preference order over the eligible rows, produced on demand.

    Orders are lazy because a budget in hours or tokens does not say up front how many
    texts it buys: `select` asks for more until the budget is spent.
    """

    #: P(c) this order draws clusters with; None for deterministic orders.
    cluster_probability: np.ndarray | None = None

    @abstractmethod
    def next(self, n: int) -> np.ndarray:
        """Up to `n` further rows (int64), none given before; empty once exhausted."""

    @abstractmethod
    def probability(self, rows: np.ndarray) -> np.ndarray:
        """Probability of each row at a single draw (1 for deterministic orders)."""

    def exhausted_note(self) -> str | None:
        """Why the order ended while eligible texts remain (None: it covered them all)."""
        return None


@dataclass(frozen=True, eq=False)
class TextInRound:
    """One text of the pool in one finished round, as the run folder recorded it: what a
    strategy's `explain` puts in words."""

    row: int  # the text's row in the pool
    cluster: int
    gap: float  # its own gap estimate, as the round used it
    cluster_probability: float  # P(c) of its cluster this round
    rank: int | None  # its place among the round's picks; None: not picked
    probability: float | None  # its probability at a single draw, when picked
    picked_ids: Sequence[str]  # the round's picks, in rank order
    picked_rows: np.ndarray  # int64, their pool rows
    picked_clusters: np.ndarray  # int, their clusters
    picked_gaps: np.ndarray  # float, their own gap estimates
    vectors: VectorLookup  # unit embedding vectors of pool rows, read when asked

    @property
    def picked(self) -> bool:
        return self.rank is not None


class Strategy(ABC):
    """Base of all strategies; each is registered in `saladpipe.selectors.registry` (or,
    outside the package, with `register_strategy`).

    The constructor takes the fields of `Params` by name (the registry builds a strategy
    from its validated table that way) and keeps them as `params`.
    """

    class Params(BaseModel):
        """The strategy's parameters, from its config table `[select.<name>]`; subclass it
        (frozen, unknown keys refused) to add some. This base has none."""

        model_config = ConfigDict(extra="forbid", frozen=True)

    #: Registry name, also written to every selected row's `strategy` column.
    name: ClassVar[str] = ""
    #: Whether the order needs the pool's embedding vectors.
    needs_vectors: ClassVar[bool] = False

    def __init__(self, **params: Any) -> None:
        self.params = self.Params.model_validate(params)

    def describe(self) -> str:
        """The strategy and its parameters in words: `salad, gamma 5`."""
        words = [
            f"{key} {value:g}" if isinstance(value, float) else f"{key} {value}"
            for key, value in self.params
        ]
        return ", ".join([self.name, *words])

    @abstractmethod
    def ordering(self, pool: Pool, rng: np.random.Generator) -> Ordering:
        """The eligible rows in this strategy's order of preference."""

    @abstractmethod
    def explain(self, text: TextInRound) -> str:
        """Why this strategy picked `text` in its round, or passed it over, in a few words
        (`saladpipe explain`; texts excluded, skipped or picked before never get here)."""

    def select(
        self,
        pool: Pool,
        budget: Budget,
        rng: np.random.Generator,
        dedup: NearDuplicates | None = None,
    ) -> Picks:
        """Walk the order until the budget is spent; never exceeds it, never repeats a row."""
        if pool.eligible_rows.size == 0:
            raise SelectionError("no eligible text in the pool: nothing to select from")
        if self.needs_vectors and pool.vectors is None:
            raise SelectionError(f"strategy {self.name!r} needs the pool's embedding vectors")
        order = self.ordering(pool, rng)
        return _fill(order, pool, budget, dedup)


def _rows_wanted(budget: Budget, spent: float, mean_cost: float | None) -> int:
    """How many more rows of the order the rest of the budget probably buys."""
    remaining = budget.limit - spent
    if budget.cost is None:
        return int(np.floor(remaining + 1e-9))
    if mean_cost is None:
        return 1024
    return int(np.ceil(1.1 * remaining / max(mean_cost, 1e-12))) + 16


def _fill(order: Ordering, pool: Pool, budget: Budget, dedup: NearDuplicates | None) -> Picks:
    picked: list[np.ndarray] = []
    costs: list[np.ndarray] = []
    skipped: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    spent, count = 0.0, 0
    exhausted = done = False
    while not done:
        want = _rows_wanted(budget, spent, spent / count if count else None)
        rows = order.next(want) if want > 0 else np.zeros(0, np.int64)
        if rows.size == 0:
            exhausted = want > 0
            break
        vectors = dedup.lookup(rows) if dedup is not None else None
        for start in range(0, rows.size, _BLOCK):
            block = rows[start : start + _BLOCK]
            position = np.arange(block.size)
            keep = np.ones(block.size, dtype=bool)
            if dedup is not None and vectors is not None:
                block_vectors = vectors[start : start + _BLOCK]
                keep, dup_of, similarity = dedup.screen(block, block_vectors)
            kept, kept_position = block[keep], position[keep]
            cost = budget.costs(kept)
            total = spent + np.cumsum(cost)
            fits = int(np.searchsorted(total, budget.limit, side="right"))
            if dedup is not None and vectors is not None:
                # Skips after the text that ended the budget were never reached.
                cut = kept_position[fits] if fits < kept.size else block.size
                dup = ~keep & (position < cut)
                skipped.append((block[dup], dup_of[dup], similarity[dup]))
                dedup.add(kept[:fits], block_vectors[kept_position[:fits]])
            picked.append(kept[:fits])
            costs.append(cost[:fits])
            count += fits
            spent = float(total[fits - 1]) if fits else spent
            if fits < kept.size:
                done = True
                break
    indices = np.concatenate(picked) if picked else np.zeros(0, np.int64)
    cost = np.concatenate(costs) if costs else np.zeros(0)
    # A running sum and a plain one can differ in the last bit: the plain one decides.
    while cost.size and max(float(cost.sum()), math.fsum(cost)) > budget.limit:
        indices, cost = indices[:-1], cost[:-1]
    notes: list[str] = []
    if exhausted:
        notes.append(
            order.exhausted_note()
            or f"the {pool.eligible_rows.size} eligible texts ran out before the budget: "
            f"spent {cost.sum():g} of {budget.limit:g} {budget.unit}"
        )
    cluster_probability = order.cluster_probability
    if cluster_probability is None:
        shares = np.bincount(pool.clusters[indices], minlength=pool.num_clusters)
        cluster_probability = shares / max(1, indices.size)
    dups = [np.concatenate(parts) for parts in zip(*skipped, strict=True)] if skipped else []
    return Picks(
        indices=indices.astype(np.int64),
        probability=order.probability(indices).astype(np.float64),
        cost=cost.astype(np.float64),
        cluster_probability=np.asarray(cluster_probability, dtype=np.float64),
        duplicates=(dups[0] if dups else np.zeros(0, np.int64)).astype(np.int64),
        duplicate_of=(dups[1] if dups else np.zeros(0, np.int64)).astype(np.int64),
        duplicate_similarity=(dups[2] if dups else np.zeros(0, np.float32)).astype(np.float32),
        notes=tuple(notes),
    )
