"""`saladpipe models build`: the trained teacher and stage-I student, cached by recipe.

Steps: sample teacher texts from every domain (never the held-out glosses), train the
tokenizer and the teacher (or reuse a cached teacher of the same seed and teacher
recipe: the heard domains do not change it), measure held-out perplexity against a unigram model,
speak the prefixes of glosses of the heard domains only, and distil the student on
them (stage I). Both models are saved as ordinary model folders (safetensors) and
load through the same code as any checkpoint. A build is written to a staging
folder and renamed into place, so a cache entry is either whole or absent; a file
lock makes a second process wait for the first instead of building twice.
"""

from __future__ import annotations

import platform
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import transformers

from saladpipe import __version__
from saladpipe.assets.cache import file_lock
from saladpipe.data_schemas.build_report import (
    REPORT_FILE,
    BuildReport,
    Stage1Report,
    TeacherReport,
)
from saladpipe.data_schemas.config import BUILTIN_PREFIX, ModelSpec, is_builtin
from saladpipe.data_schemas.errors import ConfigError
from saladpipe.data_schemas.layout import cache_dir
from saladpipe.models.builtin import TRAINED_NAMES, converted_dir
from saladpipe.models.distillation import PreparedRow
from saladpipe.models.frame_memo import FrameMemo
from saladpipe.models.loading import Teacher, load_teacher
from saladpipe.models.speech_lm import SpeechAdaptedLM
from saladpipe.progress import logger
from saladpipe.training.cost import BuildEstimate, estimate_build
from saladpipe.training.distill import distill, prepare_rows, scorer_for
from saladpipe.training.new_student import new_student
from saladpipe.training.optim import TRAIN_THREADS, cpu_threads, torch_threads
from saladpipe.training.recipe import DEFAULT_RECIPE, BuildRecipe, PretrainedTeacherRecipe
from saladpipe.training.speech import ClipCache, SpokenPrefix, speech_settings, spoken_prefixes
from saladpipe.training.teacher import held_out_quality, train_teacher
from saladpipe.training.texts import build_texts

TEACHER_DIR = "teacher"
# Written last into a cached teacher folder: the folder is whole.
TEACHER_DONE = "saladpipe_teacher.done"
STUDENT_DIR = "student"
# The builtin model names (`builtin:trained-teacher`) the default recipe's build answers to.
BUILTIN_TEACHER, BUILTIN_STUDENT = TRAINED_NAMES
# The key of each role in the folders `ensure_models` returns.
ROLE_NAMES = {"teacher": BUILTIN_TEACHER, "student": BUILTIN_STUDENT}


def build_models(
    recipe: BuildRecipe, out_dir: Path, cache_root: Path, device: str = "cpu"
) -> BuildReport:
    """Train and save teacher and stage-I student under `out_dir`; return the build report.
    `device` runs the perplexity and stage I (a trained teacher trains on the CPU); the
    report and the saved weights do not depend on it beyond floating-point rounding."""
    started = time.monotonic()
    seed = recipe.seed
    texts = build_texts(recipe)
    with torch_threads(build_threads(recipe)):
        teacher_dir = out_dir / TEACHER_DIR
        cached = ensure_teacher(recipe, cache_root, texts.teacher)
        shutil.copytree(cached, teacher_dir, ignore=shutil.ignore_patterns(TEACHER_DONE))
        teacher = load_teacher(ModelSpec(source=str(teacher_dir)), device, "float32")
        quality = held_out_quality(
            teacher.model, teacher.tokenizer, texts.teacher, texts.perplexity
        )
        logger.info(
            "teacher: held-out perplexity %.1f (unigram %.1f) on %d tokens",
            quality.perplexity,
            quality.unigram_perplexity,
            quality.tokens,
        )
        trained = time.monotonic()
        with ClipCache(cache_root, speech_settings(recipe.voice)) as cache:
            items, speech = spoken_prefixes(texts.stage1, cache, "stage-I prefixes")
        spoken = time.monotonic()
        stage1 = train_stage1(teacher, items, recipe, seed)
        stage1.student.save_pretrained(out_dir / STUDENT_DIR)
        rows, refused, losses = stage1.rows, stage1.refused, stage1.losses
    heard = sorted({item.domain for item in items})
    report = BuildReport(
        saladpipe=__version__,
        recipe_key=recipe.key(),
        recipe=recipe.as_dict(),
        teacher=TeacherReport(
            train_texts=len(texts.teacher) if recipe.teacher.trainable else 0, **asdict(quality)
        ),
        stage1=Stage1Report(
            heard_domains=heard,
            texts=len(texts.stage1),
            spoken=len(items),
            speech_rejected=dict(speech.rejected),
            trained_rows=len(rows),
            refused_rows=dict(refused),
            epoch_losses=losses,
        ),
        seconds={
            "teacher": round(trained - started, 1),
            "speech": round(spoken - trained, 1),
            "student": round(time.monotonic() - spoken, 1),
        },
        versions={
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "python": platform.python_version(),
            "cores": cpu_threads(),
            "torch_threads": build_threads(recipe),
        },
    )
    report.write(out_dir)
    return report


def build_threads(recipe: BuildRecipe) -> int:
    """Torch threads of a build: one for the small models trained from scratch (their
    matrices are too small to share between cores), every core for a pretrained LM of
    real size (SmolLM2's stage I runs 1.9x faster on two cores than on one)."""
    return TRAIN_THREADS if recipe.teacher.trainable else cpu_threads()


@dataclass(frozen=True)
class Stage1:
    """A stage-I student and what its training saw."""

    student: SpeechAdaptedLM
    rows: list[PreparedRow]
    refused: Counter[str]
    losses: list[float]


def train_stage1(
    teacher: Teacher,
    items: Sequence[SpokenPrefix],
    recipe: BuildRecipe,
    seed: int,
    frame_memo: FrameMemo | None = None,
) -> Stage1:
    """A new student distilled from `teacher` on the spoken prefixes (stage I).

    The build calls it with the recipe's seed; other seeds give the spread of students
    one teacher and one set of clips can yield (bench/hearing.py), and may share the
    frames of a frozen encoder through `frame_memo`."""
    student = new_student(teacher.model, teacher.tokenizer, recipe.encoder, seed)
    student.to(teacher.model.device)
    if frame_memo is not None:
        student.use_frame_memo(frame_memo)
    rows, refused = prepare_rows(scorer_for(teacher, student), items)
    losses = distill(
        teacher,
        student,
        rows,
        recipe.stage1,
        seed,
        "stage-I distillation",
        train_encoder=recipe.encoder.trainable,
    )
    return Stage1(student, rows, refused, losses)


def built_folder(recipe: BuildRecipe, cache_root: Path) -> Path:
    return cache_root / "models" / f"trained-{recipe.key()}"


def teacher_folder(recipe: BuildRecipe, cache_root: Path) -> Path:
    return cache_root / "models" / f"teacher-{recipe.teacher_key()}"


def ensure_teacher(recipe: BuildRecipe, cache_root: Path, texts: Sequence[str]) -> Path:
    """The cached teacher of the recipe's seed and teacher recipe, trained on `texts`
    first if absent. Builds that differ only in what the student hears share it (the
    teacher's texts are drawn before anything else, from the seed alone). A pretrained
    teacher is its checkpoint folder (a builtin converted first if needed)."""
    if isinstance(recipe.teacher, PretrainedTeacherRecipe):
        return pretrained_teacher_folder(recipe.teacher.source, cache_root)
    final = teacher_folder(recipe, cache_root)
    final.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(final.with_name(f".{final.name}.lock")):
        if (final / TEACHER_DONE).is_file():
            logger.info("teacher: reusing %s", final)
            return final
        staging = Path(tempfile.mkdtemp(prefix=".teacher-", dir=final.parent))
        try:
            model, tokenizer = train_teacher(texts, recipe.teacher, recipe.seed)
            model.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
            (staging / TEACHER_DONE).write_text(recipe.teacher_key() + "\n", encoding="utf-8")
            shutil.rmtree(final, ignore_errors=True)
            staging.rename(final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return final


def pretrained_teacher_folder(source: str, cache_root: Path) -> Path:
    """The folder of a pretrained teacher: `builtin:smollm2-135m` or a local checkpoint."""
    if not is_builtin(source):
        folder = Path(source).expanduser()
        if not (folder / "config.json").is_file():
            raise ConfigError(f"config error: teacher.source: no checkpoint folder at {source}")
        return folder
    return converted_dir(source.removeprefix(BUILTIN_PREFIX), cache_root, "teacher.source")


def estimate(recipe: BuildRecipe, cache_root: Path) -> BuildEstimate:
    """The build's cost on this machine, from a pilot of each stage (seconds)."""
    if isinstance(recipe.teacher, PretrainedTeacherRecipe):
        teacher: Path | None = pretrained_teacher_folder(recipe.teacher.source, cache_root)
    else:
        cached = teacher_folder(recipe, cache_root)
        teacher = cached if (cached / TEACHER_DONE).is_file() else None
    return estimate_build(recipe, cache_root, teacher, build_threads(recipe))


def ensure_models(
    recipe: BuildRecipe = DEFAULT_RECIPE,
    cache_root: Path | None = None,
    force: bool = False,
    device: str = "cpu",
) -> dict[str, Path]:
    """Folders of the recipe's teacher and student, built first (on `device`) if not cached
    (or `force`)."""
    final = built_folder(recipe, cache_root or cache_dir())
    with file_lock(final.with_name(f".{final.name}.lock")):
        if force and final.is_dir():
            shutil.rmtree(final)
        if not (final / REPORT_FILE).is_file():
            logger.info("building the trained teacher and student (recipe %s)", recipe.key())
            staging = Path(tempfile.mkdtemp(prefix=".building-", dir=final.parent))
            try:
                build_models(recipe, staging, cache_root or cache_dir(), device)
                shutil.rmtree(final, ignore_errors=True)
                staging.rename(final)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    return {BUILTIN_TEACHER: final / TEACHER_DIR, BUILTIN_STUDENT: final / STUDENT_DIR}
