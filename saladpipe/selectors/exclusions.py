"""Which texts and clusters a selection must leave alone, and why.

Inputs are explicit: texts and clusters named by the user, and per-clip character
error rates from an ASR check (the run's probe clips, a user's table, or both; a text
measured more than once counts with its worst clip). A text whose clip failed (CER
above `max_cer`) is excluded; a cluster whose measured texts fail on average (mean CER
above `max_cluster_cer`, the paper's rule) is excluded whole. A cluster with no
measured clip is never excluded for CER: nothing says its clips fail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from saladpipe.selectors.errors import SelectionError


@dataclass(frozen=True, eq=False)
class ClusterCer:
    """Mean character error rate of each cluster's measured texts, and how many there are."""

    mean: np.ndarray  # float64, NaN where no text of the cluster was measured
    measured: np.ndarray  # int64

    def excluded_by(self, limit: float) -> np.ndarray:
        """Clusters whose mean is above `limit`; an unmeasured cluster never is."""
        return np.flatnonzero((self.measured > 0) & (np.nan_to_num(self.mean) > limit))


def cluster_cer(clusters: np.ndarray, cer: np.ndarray, k: int) -> ClusterCer:
    """Mean CER per cluster of the measured texts in `clusters` (one CER each).

    Each text counts at most 1, a transcript wholly wrong: a recogniser that loops
    ("Flurry, move in in." 16 times: CER 31) must not outweigh the cluster's other
    clips, the mean is of how much of each clip was misheard."""
    measured = np.bincount(clusters, minlength=k)
    bounded = np.minimum(np.asarray(cer, np.float64), 1.0)
    sums = np.bincount(clusters, weights=bounded, minlength=k)
    mean = np.full(k, np.nan)
    np.divide(sums, measured, out=mean, where=measured > 0)
    return ClusterCer(mean, measured.astype(np.int64))


@dataclass(frozen=True, eq=False)
class Exclusions:
    """Excluded pool rows with a reason each, and excluded clusters with theirs."""

    rows: np.ndarray  # int64, ascending
    reasons: list[str]
    details: list[str]
    clusters: dict[int, str] = field(default_factory=dict)
    cer: ClusterCer | None = None  # None: no CER was measured

    def eligible(self, pool_clusters: np.ndarray) -> np.ndarray:
        """Boolean mask of the rows these exclusions leave."""
        mask = np.ones(pool_clusters.size, dtype=bool)
        mask[self.rows] = False
        if self.clusters:
            mask &= ~np.isin(pool_clusters, list(self.clusters))
        return mask


def find_exclusions(
    pool_clusters: np.ndarray,
    k: int,
    *,
    named_rows: np.ndarray,
    named_clusters: Sequence[int] = (),
    cer_rows: np.ndarray | None = None,
    cer: np.ndarray | None = None,
    max_cer: float = 0.3,
    max_cluster_cer: float | None = None,
) -> Exclusions:
    """Text-level and cluster-level exclusions; the first reason found for a row wins."""
    reason_of: dict[int, tuple[str, str]] = {
        int(r): ("excluded_text", "named in select.exclude") for r in named_rows
    }
    named = "excluded_cluster: named in select.exclude.clusters"
    clusters = {int(c): named for c in named_clusters}
    per_cluster = None
    if cer_rows is not None and cer is not None and cer_rows.size:
        values = np.asarray(cer, dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(values) | (values < 0))
        if bad.size:
            raise SelectionError(
                f"ASR character error rate is negative or not finite in rows {bad[:10].tolist()}"
            )
        worst = np.full(pool_clusters.size, -1.0)
        np.maximum.at(worst, cer_rows, values)
        for row in np.flatnonzero(worst > max_cer):
            reason_of.setdefault(
                int(row), ("asr_cer", f"character error rate {worst[row]:.3f} > {max_cer}")
            )
        measured = worst >= 0
        per_cluster = cluster_cer(pool_clusters[measured], worst[measured], k)
        if max_cluster_cer is not None:
            for c in per_cluster.excluded_by(max_cluster_cer):
                clusters.setdefault(
                    int(c),
                    f"asr_cluster_cer: mean character error rate {per_cluster.mean[c]:.3f} over "
                    f"{per_cluster.measured[c]} clips > {max_cluster_cer}",
                )
    rows = np.array(sorted(reason_of), dtype=np.int64)
    return Exclusions(
        rows=rows,
        reasons=[reason_of[int(r)][0] for r in rows],
        details=[reason_of[int(r)][1] for r in rows],
        clusters=clusters,
        cer=per_cluster,
    )
