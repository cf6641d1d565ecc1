"""Selection strategies: budgets, uniqueness within and across rounds, determinism, γ, frequencies.

Property tests (hypothesis) run every strategy on random pools; statistical tests use
fixed seeds (derandomized) with thresholds far in the tail, so they never flake.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.stats import chi2

from saladpipe.data_schemas.config import SelectSection, parse_config
from saladpipe.data_schemas.errors import ConfigError
from saladpipe.selectors import (
    STRATEGIES,
    Budget,
    DiverseStrategy,
    NearDuplicates,
    Pool,
    SaladStrategy,
    SelectionError,
    Strategy,
    create_strategy,
    salad_cluster_probability,
)

ALL = sorted(STRATEGIES)
SAMPLING = ["random", "salad", "stratified"]
DIM = 8


def _strategy(name: str, gamma: float = 5.0) -> Strategy:
    return create_strategy(
        SelectSection.model_validate({"strategy": name, "salad": {"gamma": gamma}})
    )


def _vectors(n: int, seed: int) -> np.ndarray:
    """Random unit vectors where every fifth row repeats an earlier one (exact duplicates)."""
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    for row in range(5, n, 5):
        v[row] = v[row - 5]
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _pool(
    sizes: list[int],
    gaps: list[float],
    *,
    text_gap: np.ndarray | None = None,
    eligible: np.ndarray | None = None,
    seed: int = 0,
) -> Pool:
    clusters = np.random.default_rng(seed).permutation(np.repeat(np.arange(len(sizes)), sizes))
    vectors = _vectors(clusters.size, seed)
    return Pool(
        clusters,
        np.asarray(gaps, dtype=np.float64),
        text_gap=text_gap,
        eligible=eligible,
        vectors=lambda rows: vectors[rows],
    )


@st.composite
def pools(draw: st.DrawFn) -> Pool:
    """Up to 6 clusters (some empty), gaps including 0, optional per-text gaps and eligibility."""
    k = draw(st.integers(1, 6))
    sizes = draw(st.lists(st.integers(0, 25), min_size=k, max_size=k))
    n = sum(sizes)
    assume(n > 0)
    gaps = draw(st.lists(st.floats(0.0, 5.0), min_size=k, max_size=k))
    assume(max(gaps) > 0)
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    text_gap = rng.gamma(2.0, 0.5, n) if draw(st.booleans()) else None
    eligible = rng.random(n) < draw(st.floats(0.3, 1.0)) if draw(st.booleans()) else None
    assume(eligible is None or eligible.any())
    return _pool(sizes, gaps, text_gap=text_gap, eligible=eligible, seed=seed)


def _drawable(pool: Pool, name: str, gamma: float) -> int:
    """Eligible texts the strategy can reach: salad never draws a cluster with P(c) = 0
    (zero gap with γ > 0, or a weight that underflows next to the largest)."""
    if name != "salad" or gamma == 0:
        return int(pool.eligible_rows.size)
    counts = pool.eligible_counts
    if not np.any((counts > 0) & (pool.cluster_gap > 0)):
        return 0
    p = salad_cluster_probability(counts / counts.sum(), pool.cluster_gap, gamma)
    return int(counts[p > 0].sum())


@st.composite
def budgets(draw: st.DrawFn, n: int) -> Budget:
    """A budget in texts, or in a per-text cost (like seconds of audio or tokens)."""
    if draw(st.booleans()):
        return Budget(draw(st.integers(1, 2 * n + 5)))
    costs = np.random.default_rng(draw(st.integers(0, 2**16))).uniform(0.1, 3.0, n)
    return Budget(draw(st.floats(0.05, 2.0 * n)), "units", lambda rows: costs[rows])


@pytest.mark.parametrize("name", ALL)
@settings(max_examples=40, deadline=None)
@given(pool=pools(), data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_budget_never_exceeded_no_repeats_same_seed_same_pick(
    name: str, pool: Pool, data: st.DataObject, seed: int
) -> None:
    budget = data.draw(budgets(pool.size))
    gamma = data.draw(st.floats(0.0, 8.0))
    strategy = _strategy(name, gamma)
    if _drawable(pool, name, gamma) == 0:
        with pytest.raises(SelectionError, match="zero gap"):
            strategy.select(pool, budget, np.random.default_rng(seed))
        return
    dedup_threshold = data.draw(st.one_of(st.none(), st.floats(0.5, 1.0)))

    def run() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        dedup = None
        if dedup_threshold is not None:
            assert pool.vectors is not None
            dedup = NearDuplicates(dedup_threshold, pool.vectors, np.zeros(0, np.int64))
        picks = strategy.select(pool, budget, np.random.default_rng(seed), dedup)
        return picks.indices, picks.probability, picks.cost

    indices, probability, cost = run()
    again = run()
    assert np.array_equal(indices, again[0]) and np.array_equal(probability, again[1])
    assert cost.sum() <= budget.limit
    assert np.array_equal(cost, budget.costs(indices))
    assert len(set(indices.tolist())) == indices.size
    assert set(indices.tolist()) <= set(pool.eligible_rows.tolist())
    assert np.all((probability > 0) & (probability <= 1))


@pytest.mark.parametrize("name", [*SAMPLING, "top_k"])
@settings(max_examples=30, deadline=None)
@given(pool=pools(), budget=st.integers(1, 60), seed=st.integers(0, 2**32 - 1))
def test_text_budget_is_spent_unless_the_pool_runs_out(
    name: str, pool: Pool, budget: int, seed: int
) -> None:
    drawable = _drawable(pool, name, 2.0)
    assume(drawable > 0)
    picks = _strategy(name, gamma=2.0).select(pool, Budget(budget), np.random.default_rng(seed))
    assert picks.indices.size == min(budget, drawable)
    assert bool(picks.notes) == (budget > drawable)


@pytest.mark.parametrize("name", ALL)
@settings(max_examples=25, deadline=None)
@given(pool=pools(), per_round=st.integers(1, 15), seed=st.integers(0, 2**32 - 1))
def test_no_text_is_picked_twice_across_rounds(
    name: str, pool: Pool, per_round: int, seed: int
) -> None:
    """Each round sees only what earlier rounds left (the ledger), as the pipeline does."""
    eligible = np.ones(pool.size, dtype=bool) if pool.eligible is None else pool.eligible.copy()
    seen: list[int] = []
    for round_index in range(4):
        round_pool = Pool(pool.clusters, pool.cluster_gap, pool.text_gap, eligible, pool.vectors)
        if not eligible.any() or _drawable(round_pool, name, 5.0) == 0:
            break
        picks = _strategy(name).select(
            round_pool, Budget(per_round), np.random.default_rng([seed, round_index])
        )
        assert not set(picks.indices.tolist()) & set(seen)
        seen.extend(picks.indices.tolist())
        eligible[picks.indices] = False
    assert len(seen) == len(set(seen))


def test_gamma_zero_is_the_pool_distribution() -> None:
    share = np.array([0.5, 0.3, 0.2])
    np.testing.assert_allclose(
        salad_cluster_probability(share, np.array([0.1, 5.0, 0.0]), 0.0), share
    )


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 50), min_size=2, max_size=8),
    data=st.data(),
)
def test_gamma_moves_mass_monotonically_to_the_worst_cluster(
    sizes: list[int], data: st.DataObject
) -> None:
    gaps = np.asarray(
        data.draw(st.lists(st.floats(0.01, 10.0), min_size=len(sizes), max_size=len(sizes)))
    )
    share = np.asarray(sizes, dtype=np.float64) / sum(sizes)
    worst = gaps == gaps.max()
    mass = [salad_cluster_probability(share, gaps, g)[worst].sum() for g in (0, 0.5, 2, 5, 20)]
    assert mass[0] == pytest.approx(share[worst].sum())
    assert all(b >= a - 1e-12 for a, b in itertools.pairwise(mass))
    second = np.sort(np.unique(gaps))[-2] if np.unique(gaps).size > 1 else None
    if second is not None and gaps.max() / second > 1.05:
        assert salad_cluster_probability(share, gaps, 2000.0)[worst].sum() > 0.999


def test_formula_matches_definition_and_large_gamma_does_not_overflow() -> None:
    share = np.array([0.5, 0.25, 0.25])
    gap = np.array([0.2, 0.4, 0.8])
    expected = share * gap**5
    np.testing.assert_allclose(
        salad_cluster_probability(share, gap, 5.0), expected / expected.sum()
    )
    p = salad_cluster_probability(np.array([0.7, 0.2, 0.1]), np.array([1.0, 1.5, 1.2]), 500.0)
    assert np.all(np.isfinite(p)) and p[1] > 0.999


def _chi_square_ok(counts: np.ndarray, probability: np.ndarray) -> bool:
    """Pearson chi-square against `probability`, rejected only beyond the 1 - 1e-6 quantile."""
    live = probability > 0
    expected = counts.sum() * probability[live]
    stat = float(np.sum((counts[live] - expected) ** 2 / expected))
    return stat < chi2.ppf(1 - 1e-6, live.sum() - 1) and counts[~live].sum() == 0


@pytest.mark.parametrize("name", SAMPLING)
@settings(max_examples=15, deadline=None, derandomize=True)
@given(
    sizes=st.lists(st.integers(400, 1200), min_size=2, max_size=6),
    data=st.data(),
)
def test_drawn_cluster_frequencies_match_p_over_many_draws(
    name: str, sizes: list[int], data: st.DataObject
) -> None:
    gaps = data.draw(st.lists(st.floats(0.1, 3.0), min_size=len(sizes), max_size=len(sizes)))
    gamma = data.draw(st.floats(0.0, 4.0))
    pool = _pool(sizes, gaps)
    strategy = _strategy(name, gamma)
    counts = np.zeros(len(sizes), dtype=np.int64)
    probability = None
    for seed in range(40):  # 40 runs x 300 draws; no cluster runs out (300 < 400)
        picks = strategy.select(pool, Budget(300), np.random.default_rng(seed))
        counts += np.bincount(pool.clusters[picks.indices], minlength=len(sizes))
        probability = picks.cluster_probability
    assert probability is not None
    assert _chi_square_ok(counts, probability), (counts, probability)
    if name == "salad":
        share = np.asarray(sizes) / sum(sizes)
        np.testing.assert_allclose(
            probability, salad_cluster_probability(share, np.asarray(gaps), gamma)
        )


def test_each_pick_records_its_single_draw_probability() -> None:
    pool = _pool([30, 10], [1.0, 2.0])
    picks = SaladStrategy(1.0).select(pool, Budget(5), np.random.default_rng(0))
    p_c = salad_cluster_probability(np.array([0.75, 0.25]), np.array([1.0, 2.0]), 1.0)
    per_text = p_c / np.array([30, 10])
    np.testing.assert_allclose(picks.probability, per_text[pool.clusters[picks.indices]])
    uniform = _strategy("random").select(pool, Budget(5), np.random.default_rng(0))
    np.testing.assert_allclose(uniform.probability, 1 / 40)
    greedy = _strategy("top_k").select(pool, Budget(5), np.random.default_rng(0))
    np.testing.assert_allclose(greedy.probability, 1.0)


def test_exhausted_clusters_pass_the_budget_to_the_others() -> None:
    pool = _pool([3, 100], [100.0, 0.1])
    picks = SaladStrategy(5.0).select(pool, Budget(50), np.random.default_rng(1))
    assert len(picks.indices) == 50
    assert np.sum(pool.clusters[picks.indices] == 0) == 3


def test_top_k_takes_the_highest_gaps_and_stops_at_the_first_text_that_does_not_fit() -> None:
    text_gap = np.array([0.1, 0.9, 0.5, 0.7, 0.3])
    costs = np.array([1.0, 2.0, 1.0, 5.0, 1.0])
    pool = Pool(np.zeros(5, np.int64), np.array([1.0]), text_gap=text_gap)
    picks = _strategy("top_k").select(
        pool, Budget(4.0, "seconds", lambda rows: costs[rows]), np.random.default_rng(0)
    )
    assert picks.indices.tolist() == [1]  # the next by gap, row 3, costs 5 and would exceed 4
    assert picks.spent == 2.0


def test_empty_cluster_is_never_drawn_and_stratified_skips_it() -> None:
    pool = _pool([20, 0, 20], [1.0, 9.0, 1.0])
    for name in ("salad", "stratified"):
        picks = _strategy(name).select(pool, Budget(30), np.random.default_rng(0))
        assert picks.cluster_probability[1] == 0
        assert 1 not in pool.clusters[picks.indices]
        assert picks.indices.size == 30
    np.testing.assert_allclose(
        _strategy("stratified")
        .select(pool, Budget(2), np.random.default_rng(0))
        .cluster_probability,
        [0.5, 0.0, 0.5],
    )


def test_zero_gap_cluster_is_not_drawn_with_gamma_and_the_shortfall_is_noted() -> None:
    pool = _pool([5, 50], [1.0, 0.0])
    picks = SaladStrategy(2.0).select(pool, Budget(20), np.random.default_rng(0))
    assert picks.indices.size == 5
    assert "P(c) = 0" in picks.notes[0]


def test_budget_larger_than_the_pool_takes_everything_and_says_so() -> None:
    pool = _pool([4, 6], [1.0, 2.0])
    for name in ALL:
        picks = _strategy(name).select(pool, Budget(1000), np.random.default_rng(0))
        assert sorted(picks.indices.tolist()) == list(range(10)), name
        assert picks.notes and "ran out" in picks.notes[0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"gaps": [0.1, float("nan")]}, "cluster gap is not finite for clusters \\[1\\]"),
        ({"gaps": [0.1, -0.2]}, "cluster gap is negative for clusters \\[1\\]"),
        ({"text_gap": np.array([0.1, np.nan, 0.2])}, "text gap is not finite for rows \\[1\\]"),
        ({"text_gap": np.array([0.1, 0.3, -1.0])}, "text gap is negative for rows \\[2\\]"),
        ({"text_gap": np.array([0.1])}, "one value per text"),
        ({"eligible": np.array([1, 0, 1])}, "boolean"),
    ],
)
def test_bad_pool_input_is_refused_naming_the_culprit(kwargs: dict[str, Any], message: str) -> None:
    gaps = kwargs.pop("gaps", [0.1, 0.2])
    with pytest.raises(SelectionError, match=message):
        Pool(np.array([0, 1, 1]), np.asarray(gaps, dtype=np.float64), **kwargs)
    with pytest.raises(SelectionError, match=r"cluster ids must lie in 0\.\.1"):
        Pool(np.array([0, 2]), np.array([0.1, 0.2]))


def test_bad_selection_input_is_refused() -> None:
    with pytest.raises(SelectionError, match="gamma must be >= 0"):
        SaladStrategy(-1.0)
    with pytest.raises(SelectionError, match="gamma must be >= 0"):
        salad_cluster_probability(np.array([1.0]), np.array([1.0]), float("nan"))
    with pytest.raises(SelectionError, match="zero gap"):
        SaladStrategy(1.0).select(_pool([3, 3], [0.0, 0.0]), Budget(2), np.random.default_rng(0))
    with pytest.raises(SelectionError, match="no eligible text"):
        SaladStrategy(1.0).select(
            _pool([3], [1.0], eligible=np.zeros(3, dtype=bool)), Budget(2), np.random.default_rng(0)
        )
    with pytest.raises(SelectionError, match="positive number of texts"):
        Budget(0)
    with pytest.raises(SelectionError, match="positive number of hours"):
        Budget(float("nan"), "hours")
    with pytest.raises(SelectionError, match="negative or not finite for rows"):
        _strategy("top_k").select(
            _pool([2], [1.0]),
            Budget(5.0, "s", lambda rows: -np.ones(rows.size)),
            np.random.default_rng(0),
        )
    no_vectors = Pool(np.array([0, 0]), np.array([1.0]))
    with pytest.raises(SelectionError, match="needs the pool's embedding vectors"):
        DiverseStrategy().select(no_vectors, Budget(1), np.random.default_rng(0))
    with pytest.raises(ConfigError, match=r"select\.salad\.gamma"):
        config = '[corpus]\nbuiltin = "wordnet-domains"\n[select.salad]\ngamma = -1\n'
        create_strategy(parse_config(config, "t", Path.cwd()).select)


def test_registry_builds_every_strategy_and_refuses_unknown_names() -> None:
    for name in ALL:
        assert _strategy(name).name == name
    assert isinstance(_strategy("salad", 3.0), SaladStrategy)
    with pytest.raises(ConfigError, match="unknown strategy 'best'"):
        create_strategy(SelectSection(strategy="best"))
