"""SALAD cluster weighting: γ semantics, budget, uniqueness, determinism, frequencies."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saladpipe.data_schemas.config import SelectSection
from saladpipe.selectors import (
    Pool,
    SaladStrategy,
    SelectionError,
    create_strategy,
    salad_cluster_probability,
)


def _pool(sizes: list[int], gaps: list[float]) -> Pool:
    clusters = np.repeat(np.arange(len(sizes)), sizes)
    return Pool(clusters, np.asarray(gaps, dtype=np.float64))


def test_gamma_zero_is_the_pool_distribution() -> None:
    share = np.array([0.5, 0.3, 0.2])
    np.testing.assert_allclose(
        salad_cluster_probability(share, np.array([0.1, 5.0, 0.0]), 0.0), share
    )


def test_large_gamma_concentrates_on_the_worst_cluster() -> None:
    share = np.array([0.7, 0.2, 0.1])
    p = salad_cluster_probability(share, np.array([1.0, 1.5, 1.2]), 200.0)
    assert p[1] > 0.999
    np.testing.assert_allclose(p.sum(), 1.0)


def test_formula_matches_definition() -> None:
    share = np.array([0.5, 0.25, 0.25])
    gap = np.array([0.2, 0.4, 0.8])
    expected = share * gap**5
    np.testing.assert_allclose(
        salad_cluster_probability(share, gap, 5.0), expected / expected.sum()
    )


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 30), min_size=2, max_size=8),
    gamma=st.floats(0.0, 20.0),
    budget=st.integers(1, 300),
    seed=st.integers(0, 2**32 - 1),
    data=st.data(),
)
def test_budget_uniqueness_and_determinism(
    sizes: list[int], gamma: float, budget: int, seed: int, data: st.DataObject
) -> None:
    gaps = data.draw(st.lists(st.floats(0.01, 10.0), min_size=len(sizes), max_size=len(sizes)))
    pool = _pool(sizes, gaps)
    if pool.size == 0:
        with pytest.raises(SelectionError, match="pool is empty"):
            SaladStrategy(gamma).select(pool, budget, np.random.default_rng(seed))
        return
    picks = SaladStrategy(gamma).select(pool, budget, np.random.default_rng(seed))
    assert len(picks.indices) == min(budget, pool.size)
    assert len(set(picks.indices.tolist())) == len(picks.indices)
    again = SaladStrategy(gamma).select(pool, budget, np.random.default_rng(seed))
    np.testing.assert_array_equal(picks.indices, again.indices)
    assert np.all((picks.probability > 0) & (picks.probability <= 1))


def test_drawn_cluster_frequencies_match_probabilities() -> None:
    pool = _pool([2000, 2000, 2000, 2000], [0.5, 1.0, 1.5, 2.0])
    strategy = SaladStrategy(2.0)
    picks = strategy.select(pool, 400, np.random.default_rng(0))
    counts = np.bincount(pool.clusters[picks.indices], minlength=4)
    expected = 400 * picks.cluster_probability
    # Pearson chi-square with 3 degrees of freedom: 16.3 is the 0.999 quantile.
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    assert chi2 < 16.3, (counts, expected)


def test_exhausted_clusters_pass_the_budget_to_the_others() -> None:
    pool = _pool([3, 100], [100.0, 0.1])
    picks = SaladStrategy(5.0).select(pool, 50, np.random.default_rng(1))
    assert len(picks.indices) == 50
    assert np.sum(pool.clusters[picks.indices] == 0) == 3


@pytest.mark.parametrize(
    ("gaps", "message"),
    [([0.1, float("nan")], "not finite"), ([0.1, -0.2], "negative")],
)
def test_bad_gaps_are_refused(gaps: list[float], message: str) -> None:
    with pytest.raises(SelectionError, match=message):
        _pool([3, 3], gaps)


def test_negative_gamma_is_refused_and_registry_builds_salad() -> None:
    with pytest.raises(SelectionError, match="gamma"):
        SaladStrategy(-1.0)
    strategy = create_strategy(SelectSection(strategy="salad", gamma=3.0))
    assert isinstance(strategy, SaladStrategy) and strategy.gamma == 3.0
