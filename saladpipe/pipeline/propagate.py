"""Propagate: a gap estimate for every text of the pool, from its nearest scored probes.

A text's gap is the similarity-weighted mean misalignment of its k most similar
scored probes (cosine similarity of the run's unit embeddings, exact search with
faiss); its spread is the weighted standard deviation of those k values, so a
large spread says the neighbours disagree. Weights are the similarities clipped
at zero (plus a tiny floor, so that k dissimilar neighbours still average). A
scored probe keeps its own measured misalignment, with spread 0 and n_neighbors 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.config import PropagateSection
from saladpipe.data_schemas.errors import SaladpipeError, SchemaError
from saladpipe.data_schemas.io import read_table, write_table
from saladpipe.models.embedding import read_embeddings
from saladpipe.pipeline.stage import Stage

_WEIGHT_FLOOR = 1e-6


@dataclass(frozen=True)
class ScoredProbes:
    """The probes that got a misalignment: ids, unit embeddings [P, d], values [P]."""

    text_ids: list[str]
    vectors: np.ndarray
    values: np.ndarray


@dataclass(frozen=True)
class Estimates:
    """Per-text gap, spread and the number of neighbours they came from."""

    gap: np.ndarray
    spread: np.ndarray
    n_neighbors: np.ndarray


def write_probe_embeddings(
    probe_shards: list[Path], embedding_shards: list[Path], out_path: Path
) -> Path:
    """Gather the embeddings of every probe text into one table (one pass over the pool)."""
    wanted = {
        text_id
        for path in probe_shards
        for text_id in tables.strings(
            read_table(path, tables.PROBES, columns=["text_id"]).column("text_id")
        )
    }
    ids: list[pa.Array] = []
    vectors: list[np.ndarray] = []
    dim = 0
    for path in embedding_shards:
        text_ids, matrix = read_embeddings(path)
        dim = matrix.shape[1]
        keep = pc.is_in(text_ids, value_set=pa.array(sorted(wanted), pa.string()))
        rows = np.flatnonzero(keep.to_numpy(zero_copy_only=False))
        ids.append(text_ids.take(rows))
        vectors.append(matrix[rows])
    matrix = np.concatenate(vectors) if vectors else np.zeros((0, dim), np.float32)
    column = pa.FixedSizeListArray.from_arrays(pa.array(matrix.ravel()), dim)
    table = pa.table({"text_id": pa.concat_arrays(ids), "embedding": column})
    return write_table(table, out_path, tables.embeddings_schema(dim))


def load_scored_probes(score_shards: list[Path], probe_embeddings: Path) -> ScoredProbes:
    """Scored probes with their embeddings, in score-shard order."""
    scores = pa.concat_tables(
        [read_table(p, tables.SCORES, columns=["text_id", "misalignment"]) for p in score_shards]
    )
    scores = scores.filter(pc.is_valid(scores.column("misalignment")))
    if scores.num_rows == 0:
        raise SaladpipeError("no probe could be scored, so no text has a gap estimate")
    text_ids, matrix = read_embeddings(probe_embeddings)
    position = pc.index_in(scores.column("text_id"), value_set=text_ids)
    if position.null_count:
        missing = scores.column("text_id").filter(pc.is_null(position))[0].as_py()
        raise SchemaError(f"{probe_embeddings}: no embedding for scored probe {missing!r}")
    rows = position.to_numpy(zero_copy_only=False).astype(np.int64)
    return ScoredProbes(
        text_ids=tables.strings(scores.column("text_id")),
        vectors=np.ascontiguousarray(matrix[rows]),
        values=scores.column("misalignment").to_numpy().astype(np.float64),
    )


def _weighted(similarity: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    weights = np.maximum(similarity.astype(np.float64), 0.0) + _WEIGHT_FLOOR
    total = weights.sum(axis=1)
    mean = (weights * values).sum(axis=1) / total
    variance = (weights * (values - mean[:, None]) ** 2).sum(axis=1) / total
    return mean, np.sqrt(variance)


def _index(probes: ScoredProbes) -> Any:
    """Exact inner-product search: cosine similarity on unit vectors."""
    import faiss

    index = faiss.IndexFlatIP(probes.vectors.shape[1])
    index.add(np.ascontiguousarray(probes.vectors, dtype=np.float32))
    return index


def knn_estimate(vectors: np.ndarray, probes: ScoredProbes, k: int) -> Estimates:
    """Gap and spread of each row of `vectors` from its k most similar scored probes."""
    neighbors = min(k, len(probes.values))
    similarity, nearest = _index(probes).search(
        np.ascontiguousarray(vectors, dtype=np.float32), neighbors
    )
    gap, spread = _weighted(similarity, probes.values[nearest])
    return Estimates(gap, spread, np.full(len(gap), neighbors, dtype=np.int32))


def held_out_estimates(probes: ScoredProbes, k: int) -> np.ndarray:
    """Each scored probe's gap estimated from the other scored probes (leave one out)."""
    count = len(probes.values)
    if count < 2:
        raise SaladpipeError("a held-out estimate needs at least two scored probes")
    neighbors = min(k, count - 1)
    similarity, nearest = _index(probes).search(probes.vectors, neighbors + 1)
    # Drop each probe itself (wherever ties put it), keeping the others in order.
    keep = np.argsort(nearest == np.arange(count)[:, None], axis=1, kind="stable")[:, :neighbors]
    similarity = np.take_along_axis(similarity, keep, axis=1)
    nearest = np.take_along_axis(nearest, keep, axis=1)
    return _weighted(similarity, probes.values[nearest])[0]


def held_out_rank_correlation(probes: ScoredProbes, k: int) -> float:
    """Spearman correlation of measured and held-out estimated misalignment of the probes."""
    from scipy.stats import spearmanr

    if len(probes.values) < 3:
        raise SaladpipeError("a rank correlation needs at least three scored probes")
    rho = spearmanr(probes.values, held_out_estimates(probes, k)).statistic
    return float(rho)


def estimate_shard(
    assignments_shard: Path,
    embedding_shard: Path,
    probes: ScoredProbes,
    k: int,
    out_path: Path,
) -> int:
    """Write the gap estimate of every text of one assignments shard; returns its rows.
    (`estimate_gaps` is the stage that reads the scored probes first.)"""
    assignments = read_table(assignments_shard, tables.ASSIGNMENTS, columns=["text_id", "cluster"])
    text_ids, vectors = read_embeddings(embedding_shard)
    if not text_ids.equals(assignments.column("text_id").combine_chunks()):
        raise SchemaError(
            f"{assignments_shard} and {embedding_shard} do not hold the same texts in order"
        )
    estimates = knn_estimate(vectors, probes, k)
    measured = dict(zip(probes.text_ids, probes.values.tolist(), strict=True))
    rows = [i for i, t in enumerate(text_ids.to_pylist()) if t in measured]
    gap, spread, count = estimates.gap, estimates.spread, estimates.n_neighbors
    gap[rows] = [measured[text_ids[i].as_py()] for i in rows]
    spread[rows] = 0.0
    count[rows] = 0
    table = pa.table(
        {
            "text_id": text_ids,
            "cluster": assignments.column("cluster"),
            "gap": pa.array(gap),
            "gap_spread": pa.array(spread),
            "n_neighbors": pa.array(count),
        }
    )
    write_table(table, out_path, tables.GAP_ESTIMATES)
    return table.num_rows


def estimate_gaps(
    assignments_shard: Path,
    embedding_shard: Path,
    scores: list[Path],
    probe_embeddings: Path,
    propagate: PropagateSection,
    out_path: Path,
) -> Path:
    """The gap-estimate stage for one shard of the pool."""
    probes = load_scored_probes(scores, probe_embeddings)
    estimate_shard(assignments_shard, embedding_shard, probes, propagate.neighbors, out_path)
    return out_path


def propagation_note(
    scores: list[Path], probe_embeddings: Path, propagate: PropagateSection
) -> str:
    """How well k-NN propagation predicts held-out scored probes, as a manifest note."""
    probes = load_scored_probes(scores, probe_embeddings)
    k = propagate.neighbors
    if len(probes.values) < 3:
        return f"gap propagation: only {len(probes.values)} scored probes, no held-out check"
    rho = held_out_rank_correlation(probes, k)
    return (
        f"gap propagation: Spearman rank correlation {rho:.3f} between measured and "
        f"leave-one-out estimated misalignment of {len(probes.values)} scored probes (k = {k})"
    )


GATHER = Stage(
    "gather-probe-embeddings",
    write_probe_embeddings,
    reads=("probe_shards", "embedding_shards"),
    keeps=("out_path",),
)
CHECK = Stage("check-gap-propagation", propagation_note, reads=("scores", "probe_embeddings"))
ESTIMATE = Stage(
    "estimate-gaps-shard",
    estimate_gaps,
    reads=("assignments_shard", "embedding_shard", "scores", "probe_embeddings"),
    keeps=("out_path",),
)
