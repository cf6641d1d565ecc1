"""Heavy objects (models, voices) built once per worker process and reused by every task."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from saladpipe.data_schemas.config import ModelsSection, TTSSection
from saladpipe.pipeline.embed import Embedder
from saladpipe.pipeline.scoring import DistillationScorer
from saladpipe.tts import SpeechService


def cache_dir() -> Path:
    """Where built models and corpora are cached: $SALADPIPE_CACHE, else ~/.cache/saladpipe."""
    if configured := os.environ.get("SALADPIPE_CACHE"):
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "saladpipe"


@functools.cache
def embedder(source: str, device: str, batch_size: int) -> Embedder:
    return Embedder(source, device, batch_size)


_speech: dict[tuple[TTSSection, str, int], SpeechService] = {}


def speech_service(tts: TTSSection, audio_format: str, seed: int) -> SpeechService:
    """The TTS worker processes of a config, started on first use and kept for every shard."""
    key = (tts, audio_format, seed)
    if key not in _speech:
        _speech[key] = SpeechService(tts, audio_format, seed)
    return _speech[key]


def close_speech_services() -> None:
    """Stop the TTS worker processes; called when a run ends."""
    while _speech:
        _speech.popitem()[1].close()


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
        teacher,
        student,
        batch_tokens=models.batch_tokens,
        batch_size=models.batch_size,
        max_tokens=models.max_tokens,
        forgetting=models.forgetting,
    )


@functools.cache
def model_ids(
    models: ModelsSection, placeholder_dirs: tuple[tuple[str, Path], ...]
) -> tuple[str, str]:
    """Teacher and student ids without loading weights, to find finished score shards."""
    from saladpipe.pipeline.models.loading import model_id

    builtin = dict(placeholder_dirs)
    return model_id(models.teacher, "teacher", builtin), model_id(
        models.student, "student", builtin
    )
