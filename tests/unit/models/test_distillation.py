"""The misalignment score: the KL itself, token positions, forgetting, batching, row statuses."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soxr
import torch
from hypothesis import given
from hypothesis import strategies as st

from saladpipe.data_schemas.config import ModelSpec
from saladpipe.data_schemas.errors import SaladpipeError
from saladpipe.models import SpeechAdaptedLM, Teacher, load_student, load_teacher
from saladpipe.models import distillation as scoring
from saladpipe.models.distillation import (
    DistillationScorer,
    ScoreItem,
    ScoreResult,
    kl_teacher_student,
    plan_batches,
)
from tests.model_factories import (
    OTHER_TEXTS,
    load_pair,
    noise,
    perturbed_student,
    placeholder_dirs,
    qwen2_audio_student,
)


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return placeholder_dirs(tmp_path_factory.mktemp("placeholders"))


@pytest.fixture(scope="module")
def pair(dirs: dict[str, Path]) -> tuple[Teacher, SpeechAdaptedLM]:
    """The placeholder teacher and a student whose LM no longer equals the teacher's."""
    teacher, student = load_pair(dirs)
    perturbed_student(student)
    return teacher, student


def _scorer(pair: tuple[Teacher, Any], **overrides: Any) -> DistillationScorer:
    options: dict[str, Any] = {"batch_tokens": 512, "batch_size": 4, "max_tokens": 128}
    return DistillationScorer(*pair, **{**options, **overrides})


@pytest.fixture(scope="module")
def scorer(pair: tuple[Teacher, SpeechAdaptedLM]) -> DistillationScorer:
    return _scorer(pair)


def _item(text_id: str, seconds: float, continuation: str, seed: int = 0) -> ScoreItem:
    return ScoreItem(text_id, "Sentence 3 is about", continuation, noise(seconds, seed=seed), 16000)


MIXED = [
    _item("target", 0.9, "music and the words that usually follow", seed=1),
    _item("short", 0.3, "algebra", seed=2),
    _item("long", 2.5, "cooking and the words that usually follow cooking in a text", seed=3),
    _item("mid", 1.2, "trains and", seed=4),
    _item("other", 0.7, "stars and the words", seed=5),
]


def _values(results: list[ScoreResult]) -> dict[str, tuple[float | None, float | None]]:
    return {r.text_id: (r.misalignment, r.forgetting) for r in results}


def _assert_same_scores(first: list[ScoreResult], second: list[ScoreResult]) -> None:
    one, two = _values(first), _values(second)
    assert one.keys() == two.keys()
    for text_id, (misalignment, forgetting) in one.items():
        other_misalignment, other_forgetting = two[text_id]
        assert misalignment is not None and other_misalignment is not None
        assert abs(misalignment - other_misalignment) < 1e-5, text_id
        assert forgetting is not None and other_forgetting is not None
        assert abs(forgetting - other_forgetting) < 1e-5, text_id


def _reference_kl(teacher: torch.Tensor, student: torch.Tensor) -> torch.Tensor:
    """KL by hand, in float64, from the same (float32) logits."""
    q = torch.softmax(teacher.double(), -1)
    terms = q * (q.log() - torch.log_softmax(student.double(), -1))
    return torch.where(q > 0, terms, 0.0).sum(-1)


@pytest.mark.parametrize(
    ("scale", "vocab", "closeness", "offset"),
    [
        (3.0, 50, 1.0, 0.0),  # unrelated distributions
        (10.0, 7, 1.0, 0.0),  # peaked, tiny vocabulary
        (0.3, 5000, 1.0, 0.0),  # flat
        (3.0, 32000, 0.1, 0.0),  # close distributions, large vocabulary
        (3.0, 32000, 0.03, 0.0),  # closer still: KL about 0.004
        (3.0, 150000, 0.1, 0.0),  # Qwen-sized vocabulary
        (3.0, 32000, 0.1, 5.0),  # student logits shifted by a constant
        (30.0, 1000, 1.0, 0.0),  # far apart: log-ratios beyond float32's exp
    ],
)
def test_kl_matches_a_float64_reference(
    scale: float, vocab: int, closeness: float, offset: float
) -> None:
    gen = torch.Generator().manual_seed(vocab)
    teacher = scale * torch.randn(8, vocab, generator=gen)
    student = teacher + closeness * scale * torch.randn(8, vocab, generator=gen) + offset
    kl = kl_teacher_student(teacher, student)
    assert kl.dtype == torch.float32
    torch.testing.assert_close(kl.double(), _reference_kl(teacher, student), rtol=1e-6, atol=0)
    # Half-precision logits are scored in float32 too, and batch dimensions are kept.
    assert kl_teacher_student(teacher.bfloat16(), student.bfloat16()).dtype == torch.float32
    assert kl_teacher_student(teacher[None], student[None]).shape == (1, 8)


def test_kl_edge_cases() -> None:
    gen = torch.Generator().manual_seed(0)
    teacher, student = 3 * torch.randn(2, 7, 50, generator=gen)
    assert torch.equal(kl_teacher_student(teacher, teacher), torch.zeros(7))
    masked = teacher.clone()
    masked[:, 0] = float("-inf")  # the teacher rules a token out: no term for it
    torch.testing.assert_close(
        kl_teacher_student(masked, student).double(),
        _reference_kl(masked, student),
        rtol=1e-6,
        atol=0,
    )
    ruled_out = student.clone()
    ruled_out[:, 0] = float("-inf")  # the student rules out a token the teacher expects
    assert torch.isinf(kl_teacher_student(teacher, ruled_out)).all()
    far = 100 * torch.randn(2, 7, 50, generator=gen)  # distributions far apart
    torch.testing.assert_close(
        kl_teacher_student(far[0], far[1]).double(),
        _reference_kl(far[0], far[1]),
        rtol=1e-5,
        atol=0,
    )
    with pytest.raises(ValueError, match="logit shapes differ"):
        kl_teacher_student(teacher, student[:, :-1])


def test_scores_equal_the_kl_recomputed_by_hand(scorer: DistillationScorer) -> None:
    """Teacher at P-1.., student hearing at A-1.., student reading at P-1.., full logits."""
    item = _item("x", 0.8, "rivers and the words")
    teacher, student = scorer.teacher, scorer.student
    assert isinstance(student, SpeechAdaptedLM)
    prefix = teacher.tokenizer(item.prefix_text)["input_ids"]
    cont = teacher.tokenizer(" " + item.continuation_text, add_special_tokens=False)["input_ids"]
    n, p = len(cont), len(prefix)
    with torch.inference_mode():
        t_logits = teacher.model(input_ids=torch.tensor([prefix + cont])).logits[
            0, p - 1 : p + n - 1
        ]
        embeds, lengths = student.encode_audio([item.audio])
        a = int(lengths[0])
        tokens = student.lm.get_input_embeddings()(torch.tensor(cont))
        inputs = torch.cat([embeds[0, :a], tokens])[None]
        s_logits = student.lm(inputs_embeds=inputs).logits[0, a - 1 : a - 1 + n]
        f_logits = student.lm(input_ids=torch.tensor([prefix + cont])).logits[0, p - 1 : p + n - 1]
    token_kl = kl_teacher_student(t_logits, s_logits)
    token_forgetting = kl_teacher_student(t_logits, f_logits)
    (result,) = scorer.score([item])
    assert result.status == "ok" and not result.truncated
    assert result.token_ids == tuple(cont) and result.n_tokens == n
    assert result.token_kl is not None and result.token_forgetting is not None
    assert result.token_kl.dtype == np.float32
    np.testing.assert_allclose(result.token_kl, token_kl.numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(result.token_forgetting, token_forgetting.numpy(), rtol=1e-5)
    assert result.misalignment == pytest.approx(float(token_kl.double().mean()), rel=1e-5)
    assert result.forgetting == pytest.approx(float(token_forgetting.double().mean()), rel=1e-5)
    # the perturbed LM reads text differently from the teacher
    assert result.forgetting is not None and result.forgetting > 0


def test_forgetting_of_an_unchanged_lm_is_zero(dirs: dict[str, Path]) -> None:
    """The placeholder student's LM is a copy of the teacher: reading text, it agrees exactly."""
    (result,) = _scorer(load_pair(dirs)).score([_item("x", 0.6, "rivers and the words")])
    assert result.forgetting == 0.0 and result.misalignment is not None
    assert result.misalignment > 0


def test_forgetting_can_be_switched_off(pair: tuple[Teacher, SpeechAdaptedLM]) -> None:
    with_forgetting = _scorer(pair).score(MIXED)
    without = _scorer(pair, forgetting=False).score(MIXED)
    assert all(r.forgetting is None and r.token_forgetting is None for r in without)
    for a, b in zip(with_forgetting, without, strict=True):
        assert a.misalignment == b.misalignment


def test_a_sample_scores_the_same_alone_and_in_any_batch(
    pair: tuple[Teacher, SpeechAdaptedLM],
) -> None:
    alone = [r for item in MIXED for r in _scorer(pair, batch_size=1).score([item])]
    for batch_tokens in (64, 200, 10_000):
        _assert_same_scores(alone, _scorer(pair, batch_tokens=batch_tokens).score(MIXED))
    reordered = _scorer(pair, batch_size=5).score(MIXED[::-1])
    assert [r.text_id for r in reordered] == [item.text_id for item in MIXED[::-1]]
    _assert_same_scores(alone, reordered)


def test_kl_chunks_do_not_change_the_scores(pair: tuple[Teacher, SpeechAdaptedLM]) -> None:
    one_position = _scorer(pair, kl_chunk_elements=1).score(MIXED)
    everything = _scorer(pair, kl_chunk_elements=1 << 30).score(MIXED)
    for a, b in zip(one_position, everything, strict=True):
        assert a.token_kl is not None and b.token_kl is not None
        np.testing.assert_allclose(a.token_kl, b.token_kl, rtol=1e-6, atol=1e-9)


def test_results_reach_the_host_once_per_batch(
    scorer: DistillationScorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Copies of computed values (floating point) to the host: one per batch, none per sample.

    Integer tensors are left out: clip lengths are host arithmetic through the
    encoders' own length functions, never a device round-trip.
    """
    calls: list[str] = []

    def counting(name: str) -> Callable[..., Any]:
        original = getattr(torch.Tensor, name)

        def wrapper(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            if self.is_floating_point():
                calls.append(name)
            return original(self, *args, **kwargs)

        return wrapper

    for name in ("cpu", "item", "tolist", "numpy", "__float__", "__int__", "__bool__"):
        monkeypatch.setattr(torch.Tensor, name, counting(name))
    batches: list[list[int]] = []

    def recording_plan(*args: Any) -> list[list[int]]:
        batches.extend(plan_batches(*args))
        return batches

    monkeypatch.setattr(scoring, "plan_batches", recording_plan)
    items = [_item(f"i{k}", 0.5, "rivers and the words that follow", seed=k) for k in range(8)]
    results = scorer.score(items)
    monkeypatch.undo()
    assert all(r.status == "ok" for r in results)
    assert len(batches) == 2  # batch_size 4
    assert calls == ["cpu", "numpy"] * len(batches)


@given(
    costs=st.lists(st.integers(min_value=1, max_value=300), max_size=60),
    batch_tokens=st.integers(min_value=2, max_value=2000),
    max_batch=st.integers(min_value=1, max_value=16),
)
def test_batches_are_sorted_and_fit_the_token_budget(
    costs: list[int], batch_tokens: int, max_batch: int
) -> None:
    batches = plan_batches(costs, batch_tokens, max_batch)
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(len(costs)))
    assert [costs[i] for i in flat] == sorted(costs)
    for batch in batches:
        longest, shortest = max(costs[i] for i in batch), min(costs[i] for i in batch)
        assert len(batch) <= max_batch
        assert len(batch) == 1 or len(batch) * longest <= batch_tokens
        assert longest <= shortest * scoring.BATCH_LENGTH_RATIO + scoring.BATCH_LENGTH_SLACK


def test_bad_rows_get_statuses_and_the_rest_is_scored(scorer: DistillationScorer) -> None:
    nan_audio = noise(0.5)
    nan_audio[10] = np.nan
    items = [
        _item("good", 0.6, "stars and words"),
        ScoreItem("no-cont", "Sentence", "   ", noise(0.5), 16000),
        ScoreItem("no-audio", "Sentence", "is here", np.zeros(0, np.float32), 16000),
        ScoreItem("nan", "Sentence", "is here", nan_audio, 16000),
        ScoreItem("stereo", "Sentence", "is here", np.zeros((2, 8000), np.float32), 16000),
        ScoreItem("bad-rate", "Sentence", "is here", noise(0.5), 0),
        ScoreItem("tiny", "Sentence", "is here", noise(0.01), 16000),
        ScoreItem("no-prefix", "", "is here", noise(0.5), 16000),
    ]
    results = scorer.score(items)
    assert [(r.text_id, r.status) for r in results] == [
        ("good", "ok"),
        ("no-cont", "empty_continuation"),
        ("no-audio", "empty_audio"),
        ("nan", "invalid_audio"),
        ("stereo", "invalid_audio"),
        ("bad-rate", "invalid_audio"),
        ("tiny", "audio_too_short"),
        ("no-prefix", "empty_prefix"),
    ]
    assert results[0].misalignment is not None and results[0].misalignment >= 0
    for r in results[1:]:
        assert r.misalignment is None and r.forgetting is None and r.n_tokens == 0
        assert r.token_kl is None and not r.truncated


def test_long_texts_are_cut_by_the_stated_rule(pair: tuple[Teacher, SpeechAdaptedLM]) -> None:
    """The continuation keeps its first tokens, up to max_tokens after the longest prefix."""
    scorer = _scorer(pair, max_tokens=12)
    long_text = "the words that usually follow rivers in a text " * 3
    item = ScoreItem("long", "Sentence 3 is about", long_text, noise(0.5), 16000)
    (result,) = scorer.score([item])
    teacher, student = pair
    prefix_len = len(teacher.tokenizer(item.prefix_text)["input_ids"])
    cont = teacher.tokenizer(" " + long_text.strip(), add_special_tokens=False)["input_ids"]
    audio_len = student.audio_positions(item.audio.size)
    assert result.status == "ok" and result.truncated
    assert result.token_ids == tuple(cont[: 12 - max(prefix_len, audio_len)])
    (short,) = scorer.score([_item("short", 0.5, "rivers")])
    assert short.status == "ok" and not short.truncated
    (too_long,) = scorer.score(
        [ScoreItem("p", "a b c d e f g h i j k l m", "x", noise(0.5), 16000)]
    )
    assert too_long.status == "prefix_too_long" and too_long.misalignment is None
    # The model's context bounds the sequence too: the placeholder's is 512 positions.
    assert scorer._teacher_limit == 12 and _scorer(pair, max_tokens=10_000)._teacher_limit == 512


def test_audio_at_another_rate_is_resampled(scorer: DistillationScorer) -> None:
    audio = noise(0.8, rate=22050, seed=5)
    original = ScoreItem("a", "Sentence 3 is about", "rivers and the words", audio, 22050)
    resampled = ScoreItem(
        "b",
        "Sentence 3 is about",
        "rivers and the words",
        soxr.resample(audio, 22050, 16000),
        16000,
    )
    first, second = scorer.score([original, resampled])
    assert first.status == second.status == "ok"
    assert first.misalignment == pytest.approx(second.misalignment, abs=1e-6)


def test_too_long_audio_for_a_whisper_window_is_a_row_status(
    dirs: dict[str, Path], pair: tuple[Teacher, SpeechAdaptedLM]
) -> None:
    student = qwen2_audio_student(dirs["placeholder-teacher"])
    scorer = _scorer((pair[0], student))
    (result,) = scorer.score([_item("long", 2.5, "rivers and")])  # the window is 2 s
    assert result.status == "audio_too_long"


def test_half_precision_models_are_scored_in_float32(dirs: dict[str, Path]) -> None:
    full = _scorer(load_pair(dirs)).score(MIXED[:2])
    teacher = load_teacher(ModelSpec(source="builtin:placeholder-teacher"), "cpu", "bfloat16", dirs)
    student = load_student(ModelSpec(source="builtin:placeholder-student"), "cpu", "bfloat16", dirs)
    assert teacher.model.dtype == torch.bfloat16
    half = _scorer((teacher, student)).score(MIXED[:2])
    for a, b in zip(full, half, strict=True):
        assert b.status == "ok" and b.token_kl is not None and b.token_kl.dtype == np.float32
        assert a.misalignment is not None and b.misalignment is not None
        assert b.misalignment == pytest.approx(a.misalignment, rel=0.1)


def test_mismatched_vocabularies_fail_before_scoring(
    pair: tuple[Teacher, SpeechAdaptedLM], tmp_path: Path
) -> None:
    other_teacher, _ = load_pair(placeholder_dirs(tmp_path, texts=OTHER_TEXTS))
    with pytest.raises(SaladpipeError, match="tokenizers differ"):
        _scorer((other_teacher, pair[1]))


def test_invalid_settings_are_refused(pair: tuple[Teacher, SpeechAdaptedLM]) -> None:
    with pytest.raises(SaladpipeError, match="batch_tokens >= 2"):
        _scorer(pair, batch_tokens=1)


def test_scorer_exposes_model_ids(scorer: DistillationScorer) -> None:
    assert scorer.teacher_id.startswith("placeholder-teacher@")
    assert scorer.student_id.startswith("placeholder-student@")
