"""Options every strategy shares: near-duplicates, exclusions, exploration, audio-rate budgets."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saladpipe.selectors import (
    DEFAULT_SPEECH_RATE,
    Budget,
    DiverseStrategy,
    Exclusions,
    NearDuplicates,
    Pool,
    RandomStrategy,
    SelectionError,
    TopKStrategy,
    cluster_cer,
    explored_gaps,
    find_exclusions,
    fit_speech_rate,
)


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def _two_topics(n_a: int, n_b: int, seed: int = 0) -> np.ndarray:
    """Two tight groups of unit vectors, far apart (cosine within ~0.99, across ~0)."""
    rng = np.random.default_rng(seed)
    a = np.eye(16)[0] + 0.05 * rng.standard_normal((n_a, 16))
    b = np.eye(16)[1] + 0.05 * rng.standard_normal((n_b, 16))
    return _unit(np.vstack([a, b]))


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    threshold=st.floats(0.6, 1.0),
    prior=st.integers(0, 5),
    budget=st.integers(1, 40),
)
def test_near_duplicates_are_never_picked_together_nor_with_earlier_rounds(
    seed: int, threshold: float, prior: int, budget: int
) -> None:
    rng = np.random.default_rng(seed)
    base = _unit(rng.standard_normal((30, 6)))
    vectors = np.vstack([base, base[rng.integers(0, 30, 20)]])  # 20 exact duplicates
    vectors = _unit(vectors + 0.02 * rng.standard_normal(vectors.shape).astype(np.float32))
    eligible = np.ones(50, dtype=bool)
    prior_rows = rng.choice(50, size=prior, replace=False)
    eligible[prior_rows] = False
    pool = Pool(
        np.zeros(50, np.int64), np.array([1.0]), eligible=eligible, vectors=lambda r: vectors[r]
    )
    assert pool.vectors is not None
    dedup = NearDuplicates(threshold, pool.vectors, prior_rows)
    picks = RandomStrategy().select(pool, Budget(budget), np.random.default_rng(seed), dedup)
    picked = vectors[picks.indices]
    among = picked @ picked.T
    np.fill_diagonal(among, -1)
    with_prior = picked @ vectors[prior_rows].T
    assert among.max(initial=-1) < threshold - 1e-6
    assert with_prior.max(initial=-1) < threshold - 1e-6
    # Every skipped text names a kept (this round or earlier) text it is too close to.
    allowed = set(prior_rows.tolist()) | set(picks.indices.tolist())
    assert set(picks.duplicate_of.tolist()) <= allowed
    for row, other, sim in zip(
        picks.duplicates, picks.duplicate_of, picks.duplicate_similarity, strict=True
    ):
        assert vectors[row] @ vectors[other] == pytest.approx(sim, abs=1e-5)
        assert sim >= threshold - 1e-6
    assert not set(picks.duplicates.tolist()) & set(picks.indices.tolist())


def test_exact_duplicate_texts_count_as_duplicates_at_threshold_one() -> None:
    v = _unit(np.random.default_rng(0).standard_normal((3, 8)))
    vectors = np.vstack([v, v[:1]])
    pool = Pool(np.zeros(4, np.int64), np.array([1.0]), vectors=lambda r: vectors[r])
    assert pool.vectors is not None
    dedup = NearDuplicates(1.0, pool.vectors, np.zeros(0, np.int64))
    picks = RandomStrategy().select(pool, Budget(4), np.random.default_rng(0), dedup)
    assert picks.indices.size == 3 and picks.duplicates.size == 1
    with pytest.raises(SelectionError, match="threshold"):
        NearDuplicates(0.0, pool.vectors, np.zeros(0, np.int64))


def test_diverse_spreads_picks_where_top_k_piles_them_on_one_topic() -> None:
    vectors = _two_topics(6, 20)
    gap = np.concatenate([np.linspace(1.0, 0.9, 6), np.linspace(0.8, 0.7, 20)])
    pool = Pool(np.zeros(26, np.int64), np.array([1.0]), text_gap=gap, vectors=lambda r: vectors[r])
    greedy = TopKStrategy().select(pool, Budget(4), np.random.default_rng(0))
    diverse = DiverseStrategy().select(pool, Budget(4), np.random.default_rng(0))
    assert np.all(greedy.indices < 6)
    assert diverse.indices[0] == 0  # the highest gap first
    assert diverse.indices[1] >= 6  # then the other topic, though its gap is lower
    again = DiverseStrategy().select(pool, Budget(4), np.random.default_rng(0))
    assert np.array_equal(again.indices, diverse.indices)


def test_diverse_prefers_distinct_texts_over_near_copies_in_the_candidate_set() -> None:
    rng = np.random.default_rng(1)
    distinct = _unit(rng.standard_normal((6, 32)))
    vectors = np.vstack([distinct[:1].repeat(6, axis=0), distinct[1:]])  # 6 copies, 5 others
    gap = np.concatenate([np.full(6, 1.0), np.full(5, 0.9)])
    pool = Pool(np.zeros(11, np.int64), np.array([1.0]), text_gap=gap, vectors=lambda r: vectors[r])
    picks = DiverseStrategy(candidates=3.0).select(pool, Budget(3), np.random.default_rng(0))
    assert sum(int(i < 6) for i in picks.indices) == 1


def test_exploration_is_optimistic_where_probes_are_few() -> None:
    mean = np.array([0.5, 0.5, np.nan, 0.2])
    std = np.array([0.1, 0.1, np.nan, np.nan])
    count = np.array([2, 50, 0, 1])
    rng = np.random.default_rng(0)
    none = explored_gaps(mean, std, count, "none", 1.0, rng)
    np.testing.assert_allclose(none, [0.5, 0.5, 0.4, 0.2])  # unscored: mean of the others
    ucb = explored_gaps(mean, std, count, "ucb", 1.0, rng)
    assert np.all(ucb >= none)
    assert ucb[0] - none[0] > ucb[1] - none[1]  # 2 probes earn more optimism than 50
    assert ucb[2] > none[2] and ucb[3] > none[3]  # no / one probe: pooled spread
    np.testing.assert_allclose(explored_gaps(mean, std, count, "ucb", 0.0, rng), none)
    first = explored_gaps(mean, std, count, "thompson", 1.0, np.random.default_rng(5))
    again = explored_gaps(mean, std, count, "thompson", 1.0, np.random.default_rng(5))
    other = explored_gaps(mean, std, count, "thompson", 1.0, np.random.default_rng(6))
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert np.all(first >= 0)
    with pytest.raises(SelectionError, match="no cluster has a scored probe"):
        explored_gaps(np.full(2, np.nan), np.full(2, np.nan), np.zeros(2), "ucb", 1.0, rng)
    with pytest.raises(SelectionError, match="weight"):
        explored_gaps(mean, std, count, "ucb", -1.0, rng)


def test_thompson_gives_a_rarely_probed_cluster_its_turns() -> None:
    """A one-probe cluster measured low still wins some rounds; with no exploration, never."""
    mean = np.array([0.30, 0.25])
    std = np.array([0.1, np.nan])
    count = np.array([40, 1])
    wins = sum(
        int(np.argmax(explored_gaps(mean, std, count, "thompson", 1.0, np.random.default_rng(s))))
        for s in range(200)
    )
    assert 5 < wins < 195
    assert np.argmax(explored_gaps(mean, std, count, "none", 1.0, np.random.default_rng(0))) == 0


def test_exclusions_by_name_by_text_cer_and_by_cluster_cer() -> None:
    clusters = np.array([0, 0, 1, 1, 2, 2])
    exclusions = find_exclusions(
        clusters,
        3,
        named_rows=np.array([0]),
        named_clusters=[2],
        cer_rows=np.array([0, 1, 2, 3, 3]),
        cer=np.array([0.9, 0.5, 0.6, 0.7, 0.1]),
        max_cer=0.4,
        max_cluster_cer=0.55,
    )
    assert exclusions.rows.tolist() == [0, 1, 2, 3]
    assert exclusions.reasons == ["excluded_text", "asr_cer", "asr_cer", "asr_cer"]
    assert exclusions.details[3] == "character error rate 0.700 > 0.4"  # worst of its clips
    assert set(exclusions.clusters) == {0, 1, 2}  # means 0.7 and 0.65 > 0.55; 2 is named
    assert exclusions.clusters[1].startswith("asr_cluster_cer: mean character error rate 0.650")
    assert "named" in exclusions.clusters[2]
    mask = exclusions.eligible(clusters)
    assert mask.tolist() == [False, False, False, False, False, False]
    with pytest.raises(SelectionError, match="not finite in rows \\[1\\]"):
        find_exclusions(
            clusters,
            3,
            named_rows=np.zeros(0, np.int64),
            cer_rows=np.array([0, 1]),
            cer=np.array([0.1, np.nan]),
        )


def test_cluster_cer_rule_keeps_clusters_without_measurements() -> None:
    exclusions = find_exclusions(
        np.array([0, 1, 1]),
        2,
        named_rows=np.zeros(0, np.int64),
        cer_rows=np.array([0]),
        cer=np.array([0.9]),
        max_cer=1.0,
        max_cluster_cer=0.5,
    )
    assert exclusions.clusters.keys() == {0}
    assert exclusions.rows.size == 0


def test_cluster_cer_is_the_mean_of_each_cluster_s_measured_texts() -> None:
    per = cluster_cer(np.array([0, 0, 2, 0]), np.array([0.2, 0.4, 0.9, 0.6]), 4)
    assert per.mean[[0, 2]] == pytest.approx([0.4, 0.9])
    assert np.isnan(per.mean[[1, 3]]).all()
    assert per.measured.tolist() == [3, 0, 1, 0]
    # An unmeasured cluster is never over a limit, however low.
    assert per.excluded_by(0.5).tolist() == [2]
    assert per.excluded_by(0.0).tolist() == [0, 2]
    empty = cluster_cer(np.zeros(0, np.int64), np.zeros(0), 2)
    assert empty.measured.tolist() == [0, 0] and empty.excluded_by(0.0).size == 0
    # A looping transcript (CER 31) counts as one wholly misheard clip, not 31.
    looped = cluster_cer(np.array([0, 0, 0, 0]), np.array([31.0, 0.0, 0.0, 0.0]), 1)
    assert looped.mean.tolist() == [0.25]


def test_exclusions_carry_the_cluster_cer_they_judged_by() -> None:
    def judged(cer_rows: np.ndarray | None, cer: np.ndarray | None) -> Exclusions:
        return find_exclusions(
            np.array([0, 0, 1]),
            3,
            named_rows=np.zeros(0, np.int64),
            cer_rows=cer_rows,
            cer=cer,
            max_cer=1.0,
            max_cluster_cer=0.5,
        )

    exclusions = judged(np.array([0, 0, 1]), np.array([0.2, 0.8, 0.4]))
    assert exclusions.cer is not None
    # Text 0 counts once, with its worse clip: (0.8 + 0.4) / 2 over 2 texts.
    assert exclusions.cer.mean[0] == pytest.approx(0.6) and exclusions.cer.measured[0] == 2
    assert list(exclusions.clusters) == [0]
    assert judged(None, None).cer is None


def test_speech_rate_is_learned_from_what_was_synthesized() -> None:
    chars = np.array([20, 40, 80, 120, 160])
    seconds = 0.3 + chars / 15.0
    rate = fit_speech_rate(chars, seconds)
    assert rate.intercept_s == pytest.approx(0.3) and rate.per_char_s == pytest.approx(1 / 15)
    assert rate.samples == 5
    assert fit_speech_rate(np.zeros(0), np.zeros(0)) == DEFAULT_SPEECH_RATE
    single = fit_speech_rate(np.array([50, 50]), np.array([4.0, 6.0]))
    assert single.intercept_s == 0 and single.per_char_s == pytest.approx(0.1)
    # A fitted negative intercept is not physical: the line goes through the origin instead.
    through_origin = fit_speech_rate(np.array([10, 100]), np.array([0.1, 9.0]))
    assert through_origin.intercept_s == 0 and through_origin.per_char_s > 0


def test_audio_budget_is_never_exceeded_and_spends_what_fits() -> None:
    rng = np.random.default_rng(0)
    n_chars = rng.integers(10, 200, 500)
    rate = fit_speech_rate(n_chars, 0.2 + n_chars / 14.0)
    hours = 0.25
    budget = Budget(hours, "audio hours", lambda rows: rate.seconds(n_chars[rows]) / 3600)
    pool = Pool(rng.integers(0, 4, 500), np.array([0.5, 1.0, 1.5, 2.0]))
    picks = RandomStrategy().select(pool, budget, np.random.default_rng(1))
    assert picks.spent <= hours
    assert hours - picks.spent < rate.seconds(np.array([200]))[0] / 3600  # within one text
