"""Select: per-cluster gap from the scored probes, then the configured strategy under the budget."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.config import SelectSection
from saladpipe.data_schemas.io import read_table, write_table
from saladpipe.selectors import Pool, SelectionError, create_strategy


@dataclass
class ClusterGaps:
    """Gap per cluster from its probes; clusters with no usable probe score get the mean."""

    counts: np.ndarray  # texts in the pool per cluster
    probe_count: np.ndarray  # probes scored per cluster
    gap_mean: np.ndarray  # NaN where no probe was scored
    gap_std: np.ndarray
    notes: list[str] = field(default_factory=list)

    def filled(self) -> np.ndarray:
        """Gap estimates used for selection: unscored clusters take the mean of scored ones."""
        return np.where(np.isnan(self.gap_mean), np.nanmean(self.gap_mean), self.gap_mean)


def cluster_gaps(pool_clusters: np.ndarray, k: int, scores: pa.Table) -> ClusterGaps:
    """Mean and spread of the probe misalignment of each cluster."""
    usable = scores.filter(pc.is_valid(scores.column("misalignment")))
    probe_clusters = usable.column("cluster").to_numpy()
    values = usable.column("misalignment").to_numpy()
    probe_count = np.bincount(probe_clusters, minlength=k)
    sums = np.bincount(probe_clusters, weights=values, minlength=k)
    squares = np.bincount(probe_clusters, weights=values**2, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(probe_count > 0, sums / probe_count, np.nan)
        var = np.where(
            probe_count > 1, (squares - probe_count * mean**2) / (probe_count - 1), np.nan
        )
    gaps = ClusterGaps(
        np.bincount(pool_clusters, minlength=k), probe_count, mean, np.sqrt(np.maximum(var, 0.0))
    )
    if not np.any(probe_count):
        raise SelectionError("no probe could be scored, so no cluster has a gap estimate")
    unscored = np.flatnonzero(probe_count == 0)
    if unscored.size:
        gaps.notes.append(
            f"clusters {unscored.tolist()} have no scored probe; "
            "they use the mean gap of the others"
        )
    return gaps


def select_round(
    pool: pa.Table,
    score_shards: list[Path],
    k: int,
    cfg: SelectSection,
    seed: int,
    round_index: int,
    selection_path: Path,
    stats_path: Path,
) -> tuple[pa.Table, ClusterGaps]:
    """Pick texts from the pool and write the selection and the per-cluster statistics."""
    scores = pa.concat_tables([read_table(p, tables.SCORES) for p in score_shards])
    clusters = pool.column("cluster").to_numpy().astype(np.int64)
    gaps = cluster_gaps(clusters, k, scores)
    gap = gaps.filled()
    strategy = create_strategy(cfg)
    picks = strategy.select(Pool(clusters, gap), cfg.budget_texts, np.random.default_rng(seed))
    if cfg.budget_texts > pool.num_rows:
        gaps.notes.append(
            f"budget of {cfg.budget_texts} texts exceeds the pool; took all {pool.num_rows}"
        )
    chosen = pool.take(pa.array(picks.indices))
    chosen_clusters = clusters[picks.indices]
    selection = pa.table(
        {
            "text_id": chosen.column("text_id"),
            "text": chosen.column("text"),
            "domain": chosen.column("domain"),
            "cluster": pa.array(chosen_clusters.astype(np.int32)),
            "cluster_gap": pa.array(gap[chosen_clusters]),
            "gap_score": pa.array(gap[chosen_clusters]),
            "selection_round": pa.array(np.full(len(picks.indices), round_index, np.int32)),
            "strategy": [strategy.name] * len(picks.indices),
            "probability": pa.array(picks.probability),
            "rank": pa.array(np.arange(len(picks.indices), dtype=np.int64)),
        }
    )
    write_table(selection, selection_path, tables.SELECTION)
    stats = pa.table(
        {
            "cluster": pa.array(np.arange(k, dtype=np.int32)),
            "pool_count": pa.array(gaps.counts.astype(np.int64)),
            "pool_share": pa.array(gaps.counts / max(1, gaps.counts.sum())),
            "probe_count": pa.array(gaps.probe_count.astype(np.int32)),
            "gap_mean": pa.array(gaps.gap_mean, from_pandas=True),
            "gap_std": pa.array(gaps.gap_std, from_pandas=True),
            "probability": pa.array(picks.cluster_probability),
        }
    )
    write_table(stats, stats_path, tables.CLUSTER_STATS)
    return selection, gaps


def read_selection(path: Path) -> pa.Table:
    """The selection of one round, in rank order."""
    return read_table(path, tables.SELECTION)
