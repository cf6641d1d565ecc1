"""Balanced and plain k-means: capacities, stability of the matching, determinism, files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import adjusted_mutual_info_score

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.config import ClusterSection
from saladpipe.data_schemas.io import read_table, write_table
from saladpipe.models.kmeans import (
    capacity,
    preferences,
    stable_match,
    train_balanced,
    train_spherical,
)
from saladpipe.pipeline import cluster


def _mixture(sizes: list[int], dim: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around len(sizes) random directions, with their true labels."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((len(sizes), dim))
    labels = np.repeat(np.arange(len(sizes)), sizes)
    x = centers[labels] + 0.35 * rng.standard_normal((labels.size, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), labels


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 60), k=st.integers(1, 6), seed=st.integers(0, 2**16), data=st.data())
def test_stable_match_respects_room_and_has_no_blocking_pair(
    n: int, k: int, seed: int, data: st.DataObject
) -> None:
    rng = np.random.default_rng(seed)
    similarity_full = rng.uniform(-1, 1, (n, k)).astype(np.float32)
    choices = np.argsort(-similarity_full, axis=1, kind="stable")
    similarity = np.take_along_axis(similarity_full, choices, axis=1)
    room = np.asarray(data.draw(st.lists(st.integers(0, n), min_size=k, max_size=k)))
    assigned = stable_match(choices, similarity, room)
    sizes = np.bincount(assigned[assigned >= 0], minlength=k)
    assert np.all(sizes <= room)
    assert (assigned < 0).sum() == max(0, n - int(room.sum()))  # everyone fits who can
    for i in range(n):
        mine = similarity_full[i, assigned[i]] if assigned[i] >= 0 else -np.inf
        for c in range(k):
            if similarity_full[i, c] <= mine or room[c] == 0:
                continue
            members = np.flatnonzero(assigned == c)
            # i would rather be in c: then c must be full of texts at least as close to it.
            assert members.size == room[c]
            assert similarity_full[members, c].min() >= similarity_full[i, c]


def test_balanced_kmeans_gives_equal_sizes_where_plain_does_not() -> None:
    vectors, _ = _mixture([400, 100, 60, 40])
    k = 4
    plain = preferences(vectors, train_spherical(vectors, k, 20, 0), 1)[0][:, 0]
    centroids = train_balanced(vectors, k, 20, 0)
    choices, similarity = preferences(vectors, centroids, k)
    balanced = stable_match(choices, similarity, np.full(k, capacity(len(vectors), k)))
    assert np.bincount(balanced, minlength=k).tolist() == [150, 150, 150, 150]
    plain_sizes = np.bincount(plain, minlength=k)
    assert plain_sizes.max() - plain_sizes.min() > 100
    again = train_balanced(vectors, k, 20, 0)
    assert np.array_equal(centroids, again)
    np.testing.assert_allclose(np.linalg.norm(centroids, axis=1), 1.0, rtol=1e-5)


def test_balanced_kmeans_recovers_equal_topics() -> None:
    vectors, labels = _mixture([80, 80, 80, 80, 80], seed=3)
    centroids = train_balanced(vectors, 5, 20, 0)
    choices, similarity = preferences(vectors, centroids, 5)
    assigned = stable_match(choices, similarity, np.full(5, capacity(400, 5)))
    assert adjusted_mutual_info_score(labels, assigned) > 0.95


def _embedding_shards(tmp: Path, vectors: np.ndarray, shard_rows: int) -> list[Path]:
    paths = []
    dim = vectors.shape[1]
    for index, start in enumerate(range(0, len(vectors), shard_rows)):
        part = vectors[start : start + shard_rows]
        table = pa.table(
            {
                "text_id": [f"t{start + i}" for i in range(len(part))],
                "embedding": pa.FixedSizeListArray.from_arrays(pa.array(part.ravel()), dim),
            }
        )
        paths.append(write_table(table, tmp / f"e-{index}.parquet", tables.embeddings_schema(dim)))
    return paths


@pytest.mark.parametrize("near", [16, 1])
def test_balanced_assignment_over_shards_writes_aligned_capped_assignments(
    tmp_path: Path, near: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With 1 preference per text most texts find their cluster full: the full-row
    fallback must still place every one of them within the capacity."""
    monkeypatch.setattr(cluster, "NEAREST_KEPT", near)
    vectors, _ = _mixture([300, 50, 50], seed=1)
    shards = _embedding_shards(tmp_path, vectors, 128)
    path = cluster.fit_centroids(shards, ClusterSection(k=3, iterations=10), 0, tmp_path / "c.npy")
    centroids = np.load(path)
    prefs = [
        cluster.preferences_shard(s, path, tmp_path / f"p-{i}.npz") for i, s in enumerate(shards)
    ]
    outs = [tmp_path / f"a-{i}.parquet" for i in range(len(shards))]
    cluster.assign_balanced(shards, prefs, path, outs)
    assert all(p.exists() for p in prefs)  # scratch: the flow deletes it once recorded
    tables_ = [read_table(p, tables.ASSIGNMENTS) for p in outs]
    ids = [t for table in tables_ for t in table.column("text_id").to_pylist()]
    assert ids == [f"t{i}" for i in range(400)]
    assigned = np.concatenate([t.column("cluster").to_numpy() for t in tables_])
    assert np.bincount(assigned, minlength=3).max() <= capacity(400, 3)
    distance = np.concatenate([t.column("distance").to_numpy() for t in tables_])
    expected = 1.0 - np.sum(vectors * centroids[assigned], axis=1)
    np.testing.assert_allclose(distance, expected, atol=1e-5)


def test_plain_assignment_is_the_nearest_centroid(tmp_path: Path) -> None:
    vectors, _ = _mixture([100, 20], seed=2)
    shards = _embedding_shards(tmp_path, vectors, 64)
    plain = ClusterSection(k=2, iterations=10, method="plain")
    path = cluster.fit_centroids(shards, plain, 0, tmp_path / "c.npy")
    centroids = np.load(path)
    out = tmp_path / "a.parquet"
    cluster.assign_shard(shards[0], path, out)
    got = read_table(out, tables.ASSIGNMENTS).column("cluster").to_numpy()
    assert np.array_equal(got, np.argmax(vectors[:64] @ centroids.T, axis=1))
