"""How well per-text gap estimates predict held-out scored probes, against cluster means.

    .venv/bin/python -m bench.propagation RUN_DIR

Reads a finished run's scores and probe embeddings. Each scored probe is left out
in turn and estimated from the others, two ways: k-nearest-neighbour propagation
(`saladpipe.pipeline.propagate`, several k) and the bare baseline SALAD's
selection uses, the mean of the other scored probes of its cluster. Prints the
Spearman rank correlation of each with the measured misalignment, and the ratio.

The same is then done on a synthetic landscape over the same real embeddings
(gap = x·u + (x·v)² for two fixed random directions u, v, plus 10% noise), where
the answer is known to be learnable: a check that a low correlation on the run
comes from its scores, not from the method.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
from scipy.stats import spearmanr

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.io import read_table
from saladpipe.data_schemas.layout import RunLayout
from saladpipe.pipeline import propagate
from saladpipe.pipeline.propagate import ScoredProbes

NEIGHBORS = (4, 8, 16)


def cluster_mean_held_out(values: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    """Each probe's estimate from the other scored probes of its cluster (global mean if none)."""
    sums = np.bincount(clusters, weights=values)
    counts = np.bincount(clusters)
    others = counts[clusters] - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        estimate = (sums[clusters] - values) / others
    return np.where(others > 0, estimate, values.mean())


def report(name: str, probes: ScoredProbes, clusters: np.ndarray) -> None:
    baseline = spearmanr(probes.values, cluster_mean_held_out(probes.values, clusters)).statistic
    print(f"{name}: {len(probes.values)} scored probes in {len(set(clusters))} clusters")
    print(f"  cluster mean (baseline)      Spearman {baseline:+.3f}")
    for k in NEIGHBORS:
        rho = propagate.held_out_rank_correlation(probes, k)
        ratio = f"{rho / baseline:.2f}x baseline" if baseline > 0.05 else "no positive baseline"
        print(f"  k-NN propagation, k = {k:<3}    Spearman {rho:+.3f}   ({ratio})")


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise SystemExit(__doc__)
    layout = RunLayout(Path(argv[0]))
    score_shards = sorted((layout.root / "scores").glob("part-*.parquet"))
    probes = propagate.load_scored_probes(score_shards, layout.probe_embeddings)
    scores = pa.concat_tables([read_table(p, tables.SCORES) for p in score_shards])
    cluster_of = dict(
        zip(scores.column("text_id").to_pylist(), scores.column("cluster").to_pylist(), strict=True)
    )
    clusters = np.array([cluster_of[t] for t in probes.text_ids], dtype=np.int64)
    report(f"run {layout.root}", probes, clusters)
    rng = np.random.default_rng(0)
    u, v = rng.standard_normal((2, probes.vectors.shape[1]))
    u, v = u / np.linalg.norm(u), v / np.linalg.norm(v)
    x = probes.vectors.astype(np.float64)
    field = x @ u + (x @ v) ** 2
    field = field + 0.1 * field.std() * rng.standard_normal(len(field))
    report(
        "synthetic landscape on the same embeddings",
        ScoredProbes(probes.text_ids, probes.vectors, field),
        clusters,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
