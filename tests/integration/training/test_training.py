"""Training the builtin models: teacher, distillation, evaluation, the build and its wiring.

The learning tests use a toy corpus in which the first word decides the rest of the
sentence, and tones in place of speech (one pitch per first word), so that they show
in seconds that the teacher learns from text and the student learns from audio.
Held-out toy sentences are new pairings of words the models have seen: an unseen
word would be spelt out in characters by a tokenizer trained on 36 sentences, which
tests the tokenizer's coverage, not whether the model learnt the rule.
The build tests run the reduced recipe for real (Piper speech included).
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import GPT2LMHeadModel

from saladpipe.cli import main
from saladpipe.corpora.wordnet import Gloss
from saladpipe.data_schemas.build_report import REPORT_FILE, BuildReport
from saladpipe.data_schemas.config import ModelSpec, ModelsSection
from saladpipe.data_schemas.errors import SaladpipeError
from saladpipe.models import (
    SpeechAdaptedLM,
    Teacher,
    fingerprint_dir,
    load_student,
    load_teacher,
)
from saladpipe.models.builtin import (
    builtin_dirs,
    builtin_names,
    trained_note,
    uses_placeholders,
)
from saladpipe.models.distillation import STATUS_OK, DistillationScorer
from saladpipe.models.frame_memo import clip_key
from saladpipe.models.text_lm import TextLM
from saladpipe.training.build import ensure_models
from saladpipe.training.distill import (
    distill,
    distillation_loss,
    encode_rows,
    prepare_rows,
    score_items,
    scorer_for,
)
from saladpipe.training.evaluate import EvalSet, evaluate, make_eval_set
from saladpipe.training.new_student import new_student
from saladpipe.training.optim import TRAIN_THREADS, torch_threads
from saladpipe.training.recipe import (
    REDUCED_RECIPE,
    DistillRecipe,
    EncoderRecipe,
    PretrainedEncoderRecipe,
    TeacherRecipe,
)
from saladpipe.training.speech import SAMPLE_RATE, SpokenPrefix
from saladpipe.training.teacher import held_out_quality, train_teacher
from saladpipe.training.texts import is_held_out, split_glosses
from tests.tts_factories import tiny_whisper_asr

# Each first word decides what the animal does and where: the continuation depends on it.
ANIMALS = {
    "cat": ("sleeps", "house"),
    "dog": ("barks", "yard"),
    "owl": ("hoots", "forest"),
    "eel": ("swims", "river"),
    "bee": ("buzzes", "garden"),
    "cow": ("grazes", "field"),
}
SIZES = ["small", "large", "young", "old", "quiet", "busy", "gentle", "wild"]
TOY_TEACHER = TeacherRecipe(
    vocab_size=400,
    hidden=32,
    layers=1,
    heads=2,
    context=64,
    epochs=60,
    batch_size=4,
    learning_rate=1e-2,
)
TOY_ENCODER = EncoderRecipe(
    hidden=32, layers=1, heads=2, mel_bins=40, window_s=2, adapter_hidden=64
)


@pytest.fixture(autouse=True, scope="module")
def _train_threads() -> Iterator[None]:
    """The tests train as the build does, on TRAIN_THREADS threads."""
    with torch_threads(TRAIN_THREADS):
        yield


def toy_texts(held_out: bool) -> list[str]:
    """Every animal with every size; one pairing in four (12 of 48) is held out."""
    return [
        f"{name.capitalize()}: a {size} animal that {verb} in the {place}."
        for a, (name, (verb, place)) in enumerate(ANIMALS.items())
        for s, size in enumerate(SIZES)
        if ((a + s) % 4 == 0) == held_out
    ]


def tone(name: str, informative: bool) -> np.ndarray:
    """One second of a pitch that names the animal (or the same pitch for all)."""
    index = list(ANIMALS).index(name) if informative else 0
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    return (0.3 * np.sin(2 * np.pi * 200.0 * (index + 1) * t)).astype(np.float32)


def toy_items(informative: bool, held_out: bool) -> list[SpokenPrefix]:
    items = []
    for i, text in enumerate(toy_texts(held_out)):
        name = text.split(":")[0].lower()
        prefix, continuation = text.split(" animal ")
        gloss = Gloss(f"toy:{i}", "toy", text)
        items.append(SpokenPrefix(gloss, prefix, "animal " + continuation, tone(name, informative)))
    return items


@pytest.fixture(scope="module")
def toy_teacher() -> Teacher:
    model, tokenizer = train_teacher(toy_texts(held_out=False), TOY_TEACHER, seed=0)
    return Teacher(model, tokenizer, "toy-teacher")


def test_teacher_beats_a_unigram_model_on_held_out_text(toy_teacher: Teacher) -> None:
    assert isinstance(toy_teacher.model, GPT2LMHeadModel)  # what train_teacher builds
    quality = held_out_quality(
        toy_teacher.model,
        toy_teacher.tokenizer,
        toy_texts(held_out=False),
        toy_texts(held_out=True),
    )
    assert quality.texts == len(ANIMALS) * 2
    assert quality.perplexity < 0.7 * quality.unigram_perplexity


def test_teacher_training_is_determined_by_the_seed() -> None:
    texts = toy_texts(held_out=False)[:12]
    recipe = TeacherRecipe(vocab_size=150, hidden=16, layers=1, heads=2, context=32, epochs=1)
    first, _ = train_teacher(texts, recipe, seed=3)
    again, _ = train_teacher(texts, recipe, seed=3)
    other, _ = train_teacher(texts, recipe, seed=4)
    weights = [m.state_dict()["lm_head.weight"] for m in (first, again, other)]
    assert weights[0].equal(weights[1])
    assert not weights[0].equal(weights[2])


def _distilled(teacher: Teacher, informative: bool) -> tuple[SpeechAdaptedLM, float]:
    student = new_student(teacher.model, teacher.tokenizer, TOY_ENCODER, seed=0)
    items = toy_items(informative, held_out=False)
    rows, refused = prepare_rows(scorer_for(teacher, student), items)
    assert len(rows) == len(items) and not refused
    recipe = DistillRecipe(epochs=25, batch_size=8, learning_rate=3e-3)
    losses = distill(teacher, student, rows, recipe, seed=0, what="toy stage I")
    assert losses[-1] < losses[0]
    results = scorer_for(teacher, student).score(score_items(items))
    assert all(r.status == STATUS_OK for r in results)
    return student, float(np.mean([r.misalignment for r in results]))


def test_distillation_teaches_the_student_to_hear(toy_teacher: Teacher) -> None:
    """With a pitch that names the animal the student ends far closer to the teacher than
    with one pitch for all: what it learnt came through the audio encoder."""
    student, hearing = _distilled(toy_teacher, informative=True)
    _, deaf = _distilled(toy_teacher, informative=False)
    assert hearing < 0.6 * deaf
    assert not student.training
    assert not any(p.requires_grad for p in student.parameters())
    # Held-out sentences of the same animals: the student answers by ear.
    held = toy_items(informative=True, held_out=True)
    eval_set = make_eval_set(toy_teacher, student, held, choices=3, seed=0)
    for question in eval_set.questions:
        row = eval_set.rows[question.row]
        assert question.choices[question.answer] == tuple(row.continuation_ids)
        assert len(set(question.choices)) == 3
        room = TOY_TEACHER.context - max(len(row.prefix_ids), row.audio_positions)
        assert all(len(choice) <= room for choice in question.choices)
    evaluation = evaluate(toy_teacher, student, eval_set)
    assert evaluation.text_accuracy > 0.6
    assert evaluation.speech_accuracy > 0.6
    # Encoding each clip once for all its options answers as encoding it per option.
    assert evaluation.speech_accuracy == _speech_accuracy_per_option(toy_teacher, student, eval_set)
    assert set(evaluation.by_domain) == {"toy"}
    assert evaluation.scored == len(held)


@torch.inference_mode()
def _speech_accuracy_per_option(
    teacher: Teacher, student: SpeechAdaptedLM, eval_set: EvalSet
) -> float:
    """The plain way: each (clip, option) pair through the student on its own."""
    vocab = len(teacher.tokenizer)
    right = 0
    for question in eval_set.questions:
        row = eval_set.rows[question.row]
        scores = []
        for choice in question.choices:
            hidden = student.speech_hidden([row.audio], [list(choice)])
            log_p = torch.log_softmax(student.text_lm.logits(hidden)[:, :vocab].float(), -1)
            scores.append(float(log_p[torch.arange(len(choice)), list(choice)].mean()))
        right += int(np.argmax(scores) == question.answer)
    return right / len(eval_set.questions)


def test_a_pretrained_encoder_stays_frozen_and_its_kept_frames_train_as_live_ones(
    toy_teacher: Teacher, tmp_path: Path
) -> None:
    """A Whisper checkpoint as the student's ears: positions cut to the recipe's window,
    weights as the checkpoint has them before and after stage I; only the adapter learns.
    Frames encoded once give the same loss as the encoder run on every step."""
    from transformers import WhisperForConditionalGeneration

    folder = tiny_whisper_asr(tmp_path / "whisper")
    recipe = PretrainedEncoderRecipe(source=str(folder), window_s=2, adapter_hidden=64)
    student = new_student(toy_teacher.model, toy_teacher.tokenizer, recipe, seed=0)
    checkpoint = WhisperForConditionalGeneration.from_pretrained(folder).model.encoder
    assert student.audio_encoder.config.max_source_positions == 100  # 2 s at 50 frames/s
    assert student.max_audio_samples == 2 * SAMPLE_RATE

    def same_as_checkpoint() -> bool:
        state = student.audio_encoder.get_encoder().state_dict()
        reference = checkpoint.state_dict()
        reference["embed_positions.weight"] = reference["embed_positions.weight"][:100]
        return all(state[name].equal(value) for name, value in reference.items())

    assert same_as_checkpoint()
    items = toy_items(informative=True, held_out=False)
    rows, refused = prepare_rows(scorer_for(toy_teacher, student), items)
    assert len(rows) == len(items) and not refused
    vocab, pad = len(toy_teacher.tokenizer), int(toy_teacher.tokenizer.pad_token_id or 0)
    teacher_lm = TextLM(toy_teacher.model)
    kept = encode_rows(student, rows[:8], "toy")
    assert [len(f) for f in kept] == [student.encoder_frames(len(r.audio)) for r in rows[:8]]
    with torch.no_grad():
        live = distillation_loss(teacher_lm, student, rows[:8], pad, vocab)
        from_kept = distillation_loss(teacher_lm, student, rows[:8], pad, vocab, kept)
    torch.testing.assert_close(from_kept, live, rtol=1e-5, atol=1e-6)
    adapter_before = [p.clone() for p in student.adapter.parameters()]
    losses = distill(
        toy_teacher,
        student,
        rows,
        DistillRecipe(epochs=3, batch_size=8),
        seed=0,
        what="frozen",
        train_encoder=recipe.trainable,
    )
    assert losses[-1] < losses[0]
    assert same_as_checkpoint()
    after = student.adapter.parameters()
    assert not all(a.equal(b) for a, b in zip(adapter_before, after, strict=True))
    # A window longer than the checkpoint's is refused, naming both.
    with pytest.raises(ValueError, match="window_s 40 is longer than the checkpoint's 30 s"):
        new_student(
            toy_teacher.model,
            toy_teacher.tokenizer,
            PretrainedEncoderRecipe(source=str(folder), window_s=40),
            seed=0,
        )


def test_a_frame_memo_encodes_each_clip_once_for_every_copy_of_a_frozen_student(
    toy_teacher: Teacher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Copies of one student share a memo: frames, losses and evaluations are the same
    as encoding live, a clip is encoded once, and other weights are refused."""
    import copy

    folder = tiny_whisper_asr(tmp_path / "whisper")
    recipe = PretrainedEncoderRecipe(source=str(folder), window_s=2, adapter_hidden=64)
    student = new_student(toy_teacher.model, toy_teacher.tokenizer, recipe, seed=0)
    items = toy_items(informative=True, held_out=True)
    eval_set = make_eval_set(toy_teacher, student, items, choices=4, seed=0)
    live_frames = student.clip_frames([row.audio for row in eval_set.rows])
    live = evaluate(toy_teacher, student, eval_set)

    memo = student.new_frame_memo()
    assert [
        f.equal(g)
        for f, g in zip(
            student.clip_frames([row.audio for row in eval_set.rows]), live_frames, strict=True
        )
    ] == [True] * len(live_frames)
    # The toy clips are one tone per animal: each distinct clip is encoded once.
    distinct = {clip_key(row.audio) for row in eval_set.rows}
    assert memo.misses == len(distinct) == len(memo) < len(eval_set.rows)
    copied = copy.deepcopy(student)
    assert copied.frame_memo is memo
    copied.use_frame_memo(memo)  # the same encoder weights: accepted

    def no_encoding(*args: object) -> None:
        raise AssertionError("a clip in the memo was encoded again")

    monkeypatch.setattr(type(copied), "_encoder_frames_batch", no_encoding)
    assert evaluate(toy_teacher, copied, eval_set) == live
    monkeypatch.undo()
    # Training the encoder with a memo would leave it stale: refused.
    rows, _ = prepare_rows(scorer_for(toy_teacher, copied), toy_items(True, held_out=False))
    with pytest.raises(ValueError, match="frame memo cannot train its encoder"):
        distill(toy_teacher, copied, rows, DistillRecipe(epochs=1), 0, "toy", train_encoder=True)
    # An encoder with other weights cannot take the memo.
    other = copy.deepcopy(student)
    with torch.no_grad():
        next(other.audio_encoder.parameters()).add_(1e-3)
    with pytest.raises(ValueError, match="are not the memo's"):
        other.use_frame_memo(memo)
    # A student whose encoder is being trained does not consult the memo.
    other.frame_memo = memo
    other.audio_encoder.requires_grad_(True)
    fresh = other.clip_frames([eval_set.rows[0].audio])[0]
    assert not fresh.equal(live_frames[0])


def test_held_out_split_is_fixed_and_disjoint() -> None:
    train, held = split_glosses()
    total = sum(len(v) for v in train.values()) + sum(len(v) for v in held.values())
    held_ids = {g.synset_id for v in held.values() for g in v}
    assert 0.04 < len(held_ids) / total < 0.09
    assert all(is_held_out(i) for i in held_ids)
    assert not any(g.synset_id in held_ids for v in train.values() for g in v)
    assert all(held[d] for d in held)  # every domain has held-out glosses


@pytest.fixture(scope="module")
def reduced_build(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return ensure_models(REDUCED_RECIPE, tmp_path_factory.mktemp("build-cache"))


def test_reduced_build_writes_loadable_models_and_a_report(reduced_build: dict[str, Path]) -> None:
    report = BuildReport.read(reduced_build["trained-teacher"].parent)
    assert report.recipe_key == REDUCED_RECIPE.key()
    stage1 = report.stage1
    assert stage1.heard_domains == sorted(REDUCED_RECIPE.heard_domains)
    assert stage1.texts == 2 * REDUCED_RECIPE.stage1_texts_per_domain
    assert stage1.spoken + sum(stage1.speech_rejected.values()) == stage1.texts
    assert len(stage1.epoch_losses) == REDUCED_RECIPE.stage1.epochs
    models = ModelsSection(
        teacher=ModelSpec(source="builtin:trained-teacher"),
        student=ModelSpec(source="builtin:trained-student"),
    )
    teacher = load_teacher(models.teacher, "cpu", "float32", reduced_build)
    student = load_student(models.student, "cpu", "float32", reduced_build)
    assert isinstance(student, SpeechAdaptedLM) and student.encoder_kind == "whisper"
    scorer = DistillationScorer(teacher, student, batch_tokens=2048, batch_size=8, max_tokens=128)
    gloss = Gloss("wn:x", "noun.animal", "Dog: a member of the genus Canis.")
    clip = tone("dog", informative=True)
    item = SpokenPrefix(gloss, "Dog: a member", "of the genus Canis.", clip)
    (result,) = scorer.score(score_items([item]))
    assert result.status == STATUS_OK and result.misalignment is not None


def test_same_seed_and_speech_give_the_same_weights(
    reduced_build: dict[str, Path], tmp_path: Path
) -> None:
    """A rebuild from the same seed, over the same cached clips, is bit for bit the same."""
    first_root = reduced_build["trained-teacher"].parents[2]
    shutil.copytree(first_root / "speech", tmp_path / "speech")
    again = ensure_models(REDUCED_RECIPE, tmp_path)
    for name in ("trained-teacher", "trained-student"):
        assert again[name] != reduced_build[name]
        assert fingerprint_dir(again[name]) == fingerprint_dir(reduced_build[name])


def test_builds_that_differ_in_what_the_student_hears_share_one_teacher(
    reduced_build: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another heard set is a new build and a new student, but the same teacher, not
    trained again (the bench's concentration sweep relies on it)."""
    import dataclasses

    import saladpipe.training.build as build

    cache_root = reduced_build["trained-teacher"].parents[2]
    other = dataclasses.replace(REDUCED_RECIPE, heard_domains=("noun.plant",))
    assert other.key() != REDUCED_RECIPE.key()
    assert other.teacher_key() == REDUCED_RECIPE.teacher_key()
    assert dataclasses.replace(other, seed=1).teacher_key() != other.teacher_key()

    def no_training(*args: object) -> None:
        raise AssertionError("the teacher was trained again")

    monkeypatch.setattr(build, "train_teacher", no_training)
    dirs = ensure_models(other, cache_root)
    assert fingerprint_dir(dirs["trained-teacher"]) == fingerprint_dir(
        reduced_build["trained-teacher"]
    )
    assert fingerprint_dir(dirs["trained-student"]) != fingerprint_dir(
        reduced_build["trained-student"]
    )
    assert BuildReport.read(dirs["trained-teacher"].parent).stage1.heard_domains == ["noun.plant"]


def test_builtin_trained_names_resolve_through_the_build(reduced_build: dict[str, Path]) -> None:
    trained = ModelsSection(
        teacher=ModelSpec(source="builtin:trained-teacher"),
        student=ModelSpec(source="builtin:trained-student"),
    )
    assert builtin_names(trained) == {"trained-teacher", "trained-student"}
    assert not uses_placeholders(trained)
    assert uses_placeholders(ModelsSection())  # the tests' default stays the placeholders
    cache_root = reduced_build["trained-teacher"].parents[2]

    def no_corpus() -> list[str]:
        raise AssertionError("the trained builtins do not read the run's corpus")

    dirs = builtin_dirs(trained, no_corpus, 0, cache_root, reduced_build)
    assert dirs == reduced_build
    note = trained_note(dirs)
    assert note is not None and "noun.animal, noun.food" in note
    assert trained_note({}) is None
    with pytest.raises(SaladpipeError, match="saladpipe models build"):
        builtin_dirs(trained, no_corpus, 0, cache_root, {})


def test_models_build_command(
    reduced_build: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache_root = reduced_build["trained-teacher"].parents[2]
    code = main(["models", "build", "--recipe", "reduced", "--cache", str(cache_root)])
    out = capsys.readouterr().out
    assert code == 0
    assert str(reduced_build["trained-teacher"]) in out and "perplexity" in out
    assert (reduced_build["trained-teacher"].parent / REPORT_FILE).is_file()
    assert main(["models", "build", "--seed", "-1"]) == 2
    assert "--seed" in capsys.readouterr().err
    # Every recipe the command offers is one the build knows, and the other way round.
    from saladpipe.cli.models import RECIPES
    from saladpipe.training.recipe import NAMED_RECIPES, SCRATCH_RECIPE

    assert set(RECIPES) == set(NAMED_RECIPES)
    assert isinstance(NAMED_RECIPES["default"].encoder, PretrainedEncoderRecipe)
    assert SCRATCH_RECIPE.encoder == EncoderRecipe()
    assert SCRATCH_RECIPE.key() != NAMED_RECIPES["default"].key()
    # A new conversion of the pretrained encoder is a new build; the scratch one is not.
    import saladpipe.training.recipe as recipes

    keys = (NAMED_RECIPES["default"].key(), SCRATCH_RECIPE.key())
    monkeypatch.setattr(recipes, "WHISPER_FORMAT_VERSION", recipes.WHISPER_FORMAT_VERSION + 1)
    assert NAMED_RECIPES["default"].key() != keys[0] and SCRATCH_RECIPE.key() == keys[1]


def test_the_estimate_of_a_build_with_a_teacher_to_train_times_its_steps(tmp_path: Path) -> None:
    """No cached teacher: the pilot trains a few real teacher steps and scales them to the
    recipe's; an encoder learnt from scratch has no separate encoding stage."""
    from saladpipe.training.build import estimate

    recipe = REDUCED_RECIPE.with_seed(7)
    found = estimate(recipe, tmp_path)
    stages = {s.stage: s for s in found.stages}
    assert list(stages) == ["teacher", "speech", "stage I"]
    assert stages["teacher"].units == round(1.5 * math.ceil(400 / 16))
    assert stages["speech"].units == len(recipe.heard_domains) * recipe.stage1_texts_per_domain
    assert stages["stage I"].units == recipe.stage1.epochs * stages["speech"].units
    assert all(s.seconds_per_unit > 0 for s in found.stages)
    assert found.seconds == pytest.approx(sum(s.seconds for s in found.stages))
    assert found.describe()[-1].startswith("  total: about ")
    assert not list((tmp_path / "models").glob("trained-*")), "an estimate builds nothing"
