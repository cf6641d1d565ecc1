"""The misalignment score: the KL itself, token positions, batching, row statuses, resampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soxr
import torch

from saladpipe.data_schemas.errors import SaladpipeError
from saladpipe.pipeline.models import SpeechAdaptedLM, Teacher
from saladpipe.pipeline.scoring import DistillationScorer, ScoreItem, kl_teacher_student
from tests.model_factories import OTHER_TEXTS, load_pair, noise, placeholder_dirs


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return placeholder_dirs(tmp_path_factory.mktemp("placeholders"))


@pytest.fixture(scope="module")
def pair(dirs: dict[str, Path]) -> tuple[Teacher, SpeechAdaptedLM]:
    return load_pair(dirs)


@pytest.fixture(scope="module")
def scorer(pair: tuple[Teacher, SpeechAdaptedLM]) -> DistillationScorer:
    return DistillationScorer(*pair, batch_size=4, max_tokens=128)


def _item(text_id: str, seconds: float, continuation: str, seed: int = 0) -> ScoreItem:
    return ScoreItem(text_id, "Sentence 3 is about", continuation, noise(seconds, seed=seed), 16000)


def test_kl_matches_a_float64_reference() -> None:
    gen = torch.Generator().manual_seed(0)
    teacher = 3 * torch.randn(7, 50, generator=gen)
    student = 3 * torch.randn(7, 50, generator=gen)
    q = torch.softmax(teacher.double(), -1)
    reference = (q * (q.log() - torch.log_softmax(student.double(), -1))).sum(-1)
    kl = kl_teacher_student(teacher, student)
    assert kl.dtype == torch.float32
    torch.testing.assert_close(kl.double(), reference, rtol=1e-6, atol=0)
    # Half-precision logits are scored in float32 too.
    assert kl_teacher_student(teacher.bfloat16(), student.bfloat16()).dtype == torch.float32
    assert torch.allclose(kl_teacher_student(teacher, teacher), torch.zeros(7), atol=1e-6)
    masked = teacher.clone()
    masked[:, 0] = float("-inf")
    assert torch.isfinite(kl_teacher_student(masked, student)).all()


def test_score_equals_kl_at_the_continuation_positions(scorer: DistillationScorer) -> None:
    """Recompute one score by hand: teacher at P-1.., student at A-1.. over full-length logits."""
    item = _item("x", 0.8, "rivers and the words")
    teacher, student = scorer.teacher, scorer.student
    prefix = teacher.tokenizer(item.prefix_text)["input_ids"]
    cont = teacher.tokenizer(" " + item.continuation_text, add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        t_logits = teacher.model(input_ids=torch.tensor([prefix + cont])).logits[0]
        embeds, lengths = student.encode_audio([item.audio])
        a = int(lengths[0])
        tokens = student.lm.get_input_embeddings()(torch.tensor(cont))
        inputs = torch.cat([embeds[0, :a], tokens])[None]
        s_logits = student.lm(inputs_embeds=inputs).logits[0]
    n, p = len(cont), len(prefix)
    expected = kl_teacher_student(t_logits[p - 1 : p - 1 + n], s_logits[a - 1 : a - 1 + n]).mean()
    (result,) = scorer.score([item])
    assert result.status == "ok" and result.n_tokens == n
    assert result.misalignment == pytest.approx(float(expected), rel=1e-5)


def test_a_sample_scores_the_same_alone_and_in_any_batch(scorer: DistillationScorer) -> None:
    target = _item("target", 0.9, "music and the words that usually follow", seed=1)
    others = [
        _item("short", 0.3, "algebra", seed=2),
        _item("long", 2.5, "cooking and the words that usually follow cooking in a text", seed=3),
        _item("mid", 1.2, "trains and", seed=4),
    ]
    (alone,) = scorer.score([target])
    batched = scorer.score([others[0], target, *others[1:]])
    assert [r.text_id for r in batched] == ["short", "target", "long", "mid"]
    assert alone.misalignment is not None and batched[1].misalignment is not None
    assert abs(alone.misalignment - batched[1].misalignment) < 1e-5
    assert alone.n_tokens == batched[1].n_tokens


def test_bad_rows_get_statuses_and_the_rest_is_scored(scorer: DistillationScorer) -> None:
    nan_audio = noise(0.5)
    nan_audio[10] = np.nan
    items = [
        _item("good", 0.6, "stars and words"),
        ScoreItem("no-cont", "Sentence", "   ", noise(0.5), 16000),
        ScoreItem("no-audio", "Sentence", "is here", np.zeros(0, np.float32), 16000),
        ScoreItem("nan", "Sentence", "is here", nan_audio, 16000),
        ScoreItem("stereo", "Sentence", "is here", np.zeros((2, 8000), np.float32), 16000),
        ScoreItem("tiny", "Sentence", "is here", noise(0.01), 16000),
    ]
    results = scorer.score(items)
    assert [(r.text_id, r.status) for r in results] == [
        ("good", "ok"),
        ("no-cont", "empty_continuation"),
        ("no-audio", "empty_audio"),
        ("nan", "invalid_audio"),
        ("stereo", "invalid_audio"),
        ("tiny", "audio_too_short"),
    ]
    assert results[0].misalignment is not None and results[0].misalignment >= 0
    assert all(r.misalignment is None and r.n_tokens == 0 for r in results[1:])


def test_long_continuations_are_cut_to_max_tokens(pair: tuple[Teacher, SpeechAdaptedLM]) -> None:
    scorer = DistillationScorer(*pair, batch_size=2, max_tokens=12)
    long_text = "the words that usually follow rivers in a text " * 3
    item = ScoreItem("long", "Sentence 3 is about", long_text, noise(0.5), 16000)
    (result,) = scorer.score([item])
    prefix_len = len(pair[0].tokenizer(item.prefix_text)["input_ids"])
    audio_len = pair[1].audio_embed_length(item.audio.size)
    assert result.status == "ok_truncated"
    assert result.n_tokens == 12 - max(prefix_len, audio_len)
    (too_long,) = scorer.score(
        [ScoreItem("p", "a b c d e f g h i j k l m", "x", noise(0.5), 16000)]
    )
    assert too_long.status == "prefix_too_long" and too_long.misalignment is None


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


def test_mismatched_vocabularies_fail_before_scoring(
    pair: tuple[Teacher, SpeechAdaptedLM], tmp_path: Path
) -> None:
    other_teacher, _ = load_pair(placeholder_dirs(tmp_path, texts=OTHER_TEXTS))
    with pytest.raises(SaladpipeError, match="tokenizers differ"):
        DistillationScorer(other_teacher, pair[1], batch_size=2, max_tokens=64)


def test_scorer_exposes_model_ids(scorer: DistillationScorer) -> None:
    assert scorer.teacher_id.startswith("placeholder-teacher@")
    assert scorer.student_id.startswith("placeholder-student@")
