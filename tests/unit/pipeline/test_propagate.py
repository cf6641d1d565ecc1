"""Gap propagation: every text's gap from its nearest scored probes, on known landscapes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.stats import spearmanr

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.errors import SaladpipeError, SchemaError
from saladpipe.data_schemas.io import read_table, write_table
from saladpipe.pipeline import propagate
from saladpipe.pipeline.propagate import ScoredProbes


def _unit(rng: np.random.Generator, n: int, dim: int = 8) -> np.ndarray:
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _field(vectors: np.ndarray) -> np.ndarray:
    """A smooth gap landscape over the sphere."""
    x = vectors.astype(np.float64)
    return 1.0 + x[:, 0] + 0.5 * x[:, 1] ** 2 - 0.3 * x[:, 2] * x[:, 3]


def _probes(vectors: np.ndarray, values: np.ndarray) -> ScoredProbes:
    return ScoredProbes([f"p{i}" for i in range(len(values))], vectors, values)


def test_estimates_follow_a_smooth_gap_field() -> None:
    rng = np.random.default_rng(0)
    probe_vectors, pool = _unit(rng, 300), _unit(rng, 3000)
    probes = _probes(probe_vectors, _field(probe_vectors))
    estimates = propagate.knn_estimate(pool, probes, k=8)
    rho = spearmanr(estimates.gap, _field(pool)).statistic
    assert rho > 0.9
    assert np.abs(estimates.gap - _field(pool)).mean() < 0.15
    assert (estimates.n_neighbors == 8).all() and (estimates.spread > 0).all()
    assert propagate.held_out_rank_correlation(probes, 8) > 0.85


def test_estimates_of_a_gapless_landscape_carry_no_ranking() -> None:
    rng = np.random.default_rng(1)
    vectors = _unit(rng, 300)
    probes = _probes(vectors, rng.standard_normal(300))  # values unrelated to position
    assert abs(propagate.held_out_rank_correlation(probes, 8)) < 0.2


def test_spread_is_the_weighted_disagreement_of_the_neighbours() -> None:
    angle = 0.3
    probe_vectors = np.array(
        [[np.cos(angle), np.sin(angle), 0], [np.cos(angle), -np.sin(angle), 0], [-1, 0, 0]],
        dtype=np.float32,
    )
    probes = _probes(probe_vectors, np.array([0.0, 2.0, 50.0]))
    query = np.array([[1.0, 0.0, 0.0]], dtype=np.float32)
    two = propagate.knn_estimate(query, probes, k=2)
    assert two.gap[0] == pytest.approx(1.0) and two.spread[0] == pytest.approx(1.0)
    # The third probe points away (similarity -1): its weight is only the tiny floor.
    everything = propagate.knn_estimate(query, probes, k=10)
    assert everything.n_neighbors[0] == 3
    assert everything.gap[0] == pytest.approx(1.0, abs=1e-3)
    constant = propagate.knn_estimate(query, _probes(probe_vectors, np.full(3, 0.7)), k=3)
    assert constant.gap[0] == pytest.approx(0.7) and constant.spread[0] == pytest.approx(0.0)


def test_held_out_estimates_leave_each_probe_out() -> None:
    vectors = np.eye(4, dtype=np.float32)[[0, 0, 1, 1]]  # two exact duplicates per direction
    probes = _probes(vectors, np.array([1.0, 3.0, 10.0, 30.0]))
    # Each probe's nearest other is its duplicate, wherever ties put the probe itself.
    np.testing.assert_allclose(propagate.held_out_estimates(probes, 1), [3.0, 1.0, 30.0, 10.0])
    with pytest.raises(SaladpipeError, match="at least two"):
        propagate.held_out_estimates(_probes(vectors[:1], np.array([1.0])), 1)


def _write_run(folder: Path, rng: np.random.Generator) -> dict[str, list[Path]]:
    """Two embedding/assignment shards, one probe shard, one scores shard with a failed probe."""
    vectors = _unit(rng, 60)
    ids = [f"t{i}" for i in range(60)]
    paths: dict[str, list[Path]] = {"embeddings": [], "assignments": [], "probes": [], "scores": []}
    for shard, span in enumerate((range(0, 35), range(35, 60))):
        rows = list(span)
        column = pa.FixedSizeListArray.from_arrays(pa.array(vectors[rows].ravel()), 8)
        embeddings = pa.table({"text_id": [ids[i] for i in rows], "embedding": column})
        paths["embeddings"].append(
            write_table(embeddings, folder / f"e{shard}.parquet", tables.embeddings_schema(8))
        )
        assignments = pa.table(
            {
                "text_id": [ids[i] for i in rows],
                "cluster": pa.array([i % 3 for i in rows], pa.int32()),
                "distance": pa.array([0.1] * len(rows), pa.float32()),
            }
        )
        paths["assignments"].append(
            write_table(assignments, folder / f"a{shard}.parquet", tables.ASSIGNMENTS)
        )
    probe_rows = list(range(0, 60, 3))  # 20 probes across both shards
    probes = pa.table(
        {
            "text_id": [ids[i] for i in probe_rows],
            "cluster": pa.array([i % 3 for i in probe_rows], pa.int32()),
            "text": ["x"] * len(probe_rows),
            "prefix_text": ["x"] * len(probe_rows),
            "continuation_text": ["y"] * len(probe_rows),
        }
    )
    paths["probes"].append(write_table(probes, folder / "probes.parquet", tables.PROBES))
    values: list[float | None] = [float(v) for v in _field(vectors[probe_rows])]
    values[0] = None  # t0 could not be scored
    scores = pa.table(
        {
            "text_id": [ids[i] for i in probe_rows],
            "cluster": pa.array([i % 3 for i in probe_rows], pa.int32()),
            "misalignment": pa.array(values, pa.float64()),
            "forgetting": pa.array([None] * len(probe_rows), pa.float64()),
            "n_tokens": pa.array([3] * len(probe_rows), pa.int32()),
            "truncated": [False] * len(probe_rows),
            "status": ["no_audio"] + ["ok"] * (len(probe_rows) - 1),
            "teacher_id": ["t"] * len(probe_rows),
            "student_id": ["s"] * len(probe_rows),
            "token_ids": pa.array([None] * len(probe_rows), pa.list_(pa.int32())),
            "token_kl": pa.array([None] * len(probe_rows), pa.list_(pa.float32())),
            "token_forgetting": pa.array([None] * len(probe_rows), pa.list_(pa.float32())),
        }
    )
    paths["scores"].append(write_table(scores, folder / "scores.parquet", tables.SCORES))
    return paths


def test_every_text_of_every_shard_gets_an_estimate(tmp_path: Path) -> None:
    paths = _write_run(tmp_path, np.random.default_rng(2))
    gathered = tmp_path / "probe-embeddings.parquet"
    assert propagate.write_probe_embeddings(paths["probes"], paths["embeddings"], gathered)
    assert pq.read_metadata(gathered).num_rows == 20
    probes = propagate.load_scored_probes(paths["scores"], gathered)
    assert len(probes.text_ids) == 19 and "t0" not in probes.text_ids
    outputs = []
    for i, (a, e) in enumerate(zip(paths["assignments"], paths["embeddings"], strict=True)):
        out = tmp_path / f"estimates-{i}.parquet"
        assert propagate.estimate_shard(a, e, probes, 4, out) == (35, 25)[i]
        outputs.append(read_table(out, tables.GAP_ESTIMATES))
    table = pa.concat_tables(outputs)
    rows = {r["text_id"]: r for r in table.to_pylist()}
    assert len(rows) == 60
    measured = dict(zip(probes.text_ids, probes.values.tolist(), strict=True))
    for text_id, row in rows.items():
        if text_id in measured:
            assert (row["gap"], row["gap_spread"], row["n_neighbors"]) == (
                measured[text_id],
                0.0,
                0,
            )
        else:
            assert row["n_neighbors"] == 4 and row["gap_spread"] >= 0
    assert rows["t0"]["n_neighbors"] == 4  # its score failed: estimated like any other text
    assert rows["t1"]["cluster"] == 1
    again = tmp_path / "again.parquet"
    propagate.estimate_shard(paths["assignments"][0], paths["embeddings"][0], probes, 4, again)
    assert read_table(again, tables.GAP_ESTIMATES).equals(outputs[0])


def test_missing_scores_and_mismatched_shards_are_clear_errors(tmp_path: Path) -> None:
    paths = _write_run(tmp_path, np.random.default_rng(3))
    gathered = tmp_path / "probe-embeddings.parquet"
    propagate.write_probe_embeddings(paths["probes"], paths["embeddings"], gathered)
    probes = propagate.load_scored_probes(paths["scores"], gathered)
    with pytest.raises(SchemaError, match="do not hold the same texts"):
        propagate.estimate_shard(
            paths["assignments"][0], paths["embeddings"][1], probes, 4, tmp_path / "x.parquet"
        )
    scores = read_table(paths["scores"][0], tables.SCORES)
    empty = scores.set_column(
        scores.schema.get_field_index("misalignment"),
        "misalignment",
        pa.nulls(scores.num_rows, pa.float64()),
    )
    write_table(empty, paths["scores"][0], tables.SCORES)
    with pytest.raises(SaladpipeError, match="no probe could be scored"):
        propagate.load_scored_probes(paths["scores"], gathered)
