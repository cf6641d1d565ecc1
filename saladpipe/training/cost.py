"""What a model build will cost on this machine, measured before it starts.

A pilot runs each stage's own code on a small slice of its work (a few teacher steps or
perplexity texts, a few spoken prefixes, one distillation epoch of a few rows) and
scales its time by the stage's whole amount: a build of an hour is announced after
seconds, from this machine's speed, not from a table. The pilot's clips go into the
clip cache the build reads, so they are not made twice. Start-up costs (loading models,
starting the speech workers) are in the pilot's rates, so the estimate leans high.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from saladpipe.data_schemas.config import ModelSpec
from saladpipe.data_schemas.errors import SaladpipeError
from saladpipe.models.loading import Teacher, load_teacher
from saladpipe.training.distill import distill, encode_rows, prepare_rows, scorer_for
from saladpipe.training.new_student import new_student
from saladpipe.training.optim import Trainer, seeded, torch_threads
from saladpipe.training.recipe import BuildRecipe, TeacherRecipe
from saladpipe.training.speech import (
    ClipCache,
    SpokenPrefix,
    prefix_split,
    speech_settings,
    spoken_prefixes,
)
from saladpipe.training.teacher import (
    encode,
    held_out_quality,
    new_teacher,
    teacher_step,
    teacher_steps,
)
from saladpipe.training.texts import BuildTexts, build_texts

# Perplexity texts the pilot reads and teacher steps it trains; its stage-I epoch is one
# step of the recipe's batch size, on as many spoken prefixes.
PILOT_PERPLEXITY_TEXTS = 16
PILOT_TEACHER_STEPS = 5


@dataclass(frozen=True)
class StageEstimate:
    """One stage of a build: how much work, and the pilot's seconds per unit of it."""

    stage: str
    units: int
    unit: str
    seconds_per_unit: float

    @property
    def seconds(self) -> float:
        return self.units * self.seconds_per_unit


@dataclass(frozen=True)
class BuildEstimate:
    """The pilot's estimate of a build, stage by stage, and the memory the pilot took."""

    stages: tuple[StageEstimate, ...]
    pilot_seconds: float
    peak_rss_mb: float

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)

    def describe(self) -> list[str]:
        """Lines for the terminal: one per stage and the total."""
        lines = [
            f"  {s.stage}: {s.units} {s.unit} x {s.seconds_per_unit:.3f} s = {minutes(s.seconds)}"
            for s in self.stages
        ]
        return [
            f"estimated cost on this machine (pilot of {self.pilot_seconds:.0f} s, "
            f"process peak {self.peak_rss_mb / 1024:.1f} GB):",
            *lines,
            f"  total: about {minutes(self.seconds)}",
        ]


def minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def estimate_build(
    recipe: BuildRecipe, cache_root: Path, teacher_folder: Path | None, threads: int
) -> BuildEstimate:
    """Measure a pilot of each stage of `recipe`'s build. `teacher_folder`: the teacher
    the build will use when it has one already (cached or pretrained), else None."""
    started = time.monotonic()
    texts = build_texts(recipe)
    with torch_threads(threads):
        teacher, teacher_stage = _teacher_pilot(recipe, texts, teacher_folder)
        with ClipCache(cache_root, speech_settings(recipe.voice)) as cache:
            missing = cache.missing([prefix_split(g)[0] for g in texts.stage1])
            sample = texts.stage1[: recipe.stage1.batch_size]
            sample_missing = cache.missing([prefix_split(g)[0] for g in sample])
            speech_started = time.monotonic()
            pilot, _ = spoken_prefixes(sample, cache, "pilot prefixes")
            spoken_s = time.monotonic() - speech_started
        per_clip = spoken_s / sample_missing if sample_missing else 0.0
        speech = StageEstimate("speech", missing, "clips", per_clip)
        student = _student_pilot(teacher, pilot, recipe, len(texts.stage1))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return BuildEstimate(
        (teacher_stage, speech, *student), round(time.monotonic() - started, 1), peak
    )


def _teacher_pilot(
    recipe: BuildRecipe, texts: BuildTexts, folder: Path | None
) -> tuple[Teacher, StageEstimate]:
    """The teacher the student pilot distils from, and the teacher stage's estimate."""
    if folder is not None:
        teacher = load_teacher(ModelSpec(source=str(folder)), "cpu", "float32")
        sample = texts.perplexity[:PILOT_PERPLEXITY_TEXTS]
        started = time.monotonic()
        held_out_quality(teacher.model, teacher.tokenizer, [], sample)
        per_text = (time.monotonic() - started) / len(sample)
        return teacher, StageEstimate(
            "teacher perplexity", len(texts.perplexity), "held-out texts", per_text
        )
    assert isinstance(recipe.teacher, TeacherRecipe)
    return _trained_teacher_pilot(recipe.teacher, texts.teacher)


def _trained_teacher_pilot(
    recipe: TeacherRecipe, texts: Sequence[str]
) -> tuple[Teacher, StageEstimate]:
    """Time a few steps of the teacher's training on real batches of its texts."""
    from saladpipe.models.bpe import train_bpe_tokenizer

    tokenizer = train_bpe_tokenizer(texts, recipe.vocab_size, recipe.context)
    sample = encode(tokenizer, texts[: recipe.batch_size * PILOT_TEACHER_STEPS], recipe.context)
    with seeded(0):
        model = new_teacher(recipe, tokenizer)
    trainer = Trainer([(list(model.parameters()), recipe.learning_rate)], PILOT_TEACHER_STEPS, 0.0)
    started = time.monotonic()
    for step in range(PILOT_TEACHER_STEPS):
        if step == 1:  # the first step allocates what the others reuse
            started = time.monotonic()
        batch = sample[step * recipe.batch_size : (step + 1) * recipe.batch_size]
        teacher_step(model, trainer, batch, int(tokenizer.pad_token_id))
    per_step = (time.monotonic() - started) / (PILOT_TEACHER_STEPS - 1)
    steps = teacher_steps(recipe, recipe.texts)
    return Teacher(model.eval(), tokenizer, "pilot"), StageEstimate(
        "teacher", steps, "steps", per_step
    )


def _student_pilot(
    teacher: Teacher, pilot: Sequence[SpokenPrefix], recipe: BuildRecipe, rows: int
) -> tuple[StageEstimate, ...]:
    """Encode the pilot's clips (a frozen encoder does it once per clip) and run one
    distillation epoch of them; scale to the build's rows and epochs."""
    student = new_student(teacher.model, teacher.tokenizer, recipe.encoder, recipe.seed)
    prepared, refused = prepare_rows(scorer_for(teacher, student), pilot)
    if not prepared:
        raise SaladpipeError(
            f"cannot estimate the build: none of the pilot's {len(pilot)} spoken prefixes "
            f"could be scored ({dict(refused) or 'none could be spoken'})"
        )
    frozen = not recipe.encoder.trainable
    started = time.monotonic()
    if frozen:
        encode_rows(student, prepared, "pilot")
    per_clip = (time.monotonic() - started) / len(prepared)
    one_epoch = replace(recipe.stage1, epochs=1)
    started = time.monotonic()
    distill(teacher, student, prepared, one_epoch, 0, "pilot", train_encoder=not frozen)
    per_row = (time.monotonic() - started) / len(prepared) - (per_clip if frozen else 0.0)
    steps = recipe.stage1.epochs * rows
    encoding = (StageEstimate("stage I encoding", rows, "clips", per_clip),) if frozen else ()
    return (*encoding, StageEstimate("stage I", steps, "row steps", max(per_row, 0.0)))
