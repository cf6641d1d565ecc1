"""Heavy objects (models, voices) built once per worker process and reused by every task."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from saladpipe.data_schemas.config import ModelsSection, is_builtin
from saladpipe.pipeline.embed import Embedder
from saladpipe.pipeline.scoring import DistillationScorer
from saladpipe.tts import TTSEngine, create_engine


def cache_dir() -> Path:
    """Where built models and corpora are cached: $SALADPIPE_CACHE, else ~/.cache/saladpipe."""
    if configured := os.environ.get("SALADPIPE_CACHE"):
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "saladpipe"


def uses_placeholders(models: ModelsSection) -> bool:
    """True when teacher or student is a builtin placeholder with meaningless weights."""
    return is_builtin(models.teacher.source) or is_builtin(models.student.source)


@functools.cache
def embedder(source: str, device: str, batch_size: int) -> Embedder:
    return Embedder(source, device, batch_size)


@functools.cache
def tts_engine(engine: str, voice: str) -> TTSEngine:
    return create_engine(engine, voice)


@functools.cache
def scorer(
    models: ModelsSection, placeholder_dirs: tuple[tuple[str, Path], ...]
) -> DistillationScorer:
    """Load teacher and student once; `placeholder_dirs` maps builtin names to built folders."""
    from saladpipe.pipeline.models.loading import load_student, load_teacher

    builtin = dict(placeholder_dirs)
    teacher = load_teacher(models.teacher, models.device, models.dtype, builtin)
    student = load_student(models.student, models.device, models.dtype, builtin)
    return DistillationScorer(
        teacher, student, batch_size=models.batch_size, max_tokens=models.max_tokens
    )
