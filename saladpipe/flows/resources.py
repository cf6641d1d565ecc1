"""Heavy objects (models, voices) built once per worker process and reused by every task.

"Worker process" is whichever process runs the tasks: the flow's own process with the
thread task runner (its threads share one copy, built by the first thread that asks),
or each Dask worker process, which builds its own copy on its first task and keeps it
for every later task, of this run and, on a long-lived cluster, of later runs.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar, cast

from saladpipe.data_schemas.config import ModelsSection, TTSSection
from saladpipe.models.distillation import DistillationScorer
from saladpipe.models.embedding import Embedder
from saladpipe.tts import SpeechService


def cache_dir() -> Path:
    """Where built models and corpora are cached: $SALADPIPE_CACHE, else ~/.cache/saladpipe."""
    if configured := os.environ.get("SALADPIPE_CACHE"):
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "saladpipe"


P = ParamSpec("P")
R = TypeVar("R")
logger = logging.getLogger("saladpipe")

# How many objects of each kind this process built: one per distinct config, whatever the
# number of tasks (a test reads it on each Dask worker).
built: Counter[str] = Counter()


def once_per_process(fn: Callable[P, R]) -> Callable[P, R]:
    """functools.cache that builds each value once even when threads ask at the same time."""

    def build(*args: P.args, **kwargs: P.kwargs) -> R:
        value = fn(*args, **kwargs)
        built[fn.__name__] += 1
        logger.info("%s: built in process %d", fn.__name__, os.getpid())
        return value

    cached = cast(Callable[P, R], functools.cache(build))
    lock = threading.Lock()

    @functools.wraps(fn)
    def build_or_reuse(*args: P.args, **kwargs: P.kwargs) -> R:
        with lock:
            return cached(*args, **kwargs)

    return build_or_reuse


@once_per_process
def embedder(source: str, device: str, batch_size: int) -> Embedder:
    return Embedder(source, device, batch_size)


_speech: dict[tuple[TTSSection, str, int], SpeechService] = {}
_speech_lock = threading.Lock()


def speech_service(tts: TTSSection, audio_format: str, seed: int) -> SpeechService:
    """The TTS worker processes of a config, started on first use and kept for every shard."""
    key = (tts, audio_format, seed)
    with _speech_lock:
        if key not in _speech:
            _speech[key] = SpeechService(tts, audio_format, seed)
            built["speech_service"] += 1
            logger.info("speech_service: started in process %d", os.getpid())
        return _speech[key]


def close_speech_services() -> None:
    """Stop the TTS worker processes; called when a run ends."""
    with _speech_lock:
        while _speech:
            _speech.popitem()[1].close()


@once_per_process
def scorer(
    models: ModelsSection, placeholder_dirs: tuple[tuple[str, Path], ...]
) -> DistillationScorer:
    """Load teacher and student once; `placeholder_dirs` maps builtin names to built folders."""
    from saladpipe.models.loading import load_student, load_teacher

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
    from saladpipe.models.loading import model_id

    builtin = dict(placeholder_dirs)
    return model_id(models.teacher, "teacher", builtin), model_id(
        models.student, "student", builtin
    )
