"""Scoring models: the teacher text LM, the speech-adapted student, and how to load them.

Importing this package loads torch and transformers; import it only where models run.
"""

from saladpipe.pipeline.models.loading import (
    Teacher,
    check_shared_vocabulary,
    fingerprint_dir,
    load_student,
    load_teacher,
    resolve_device,
    resolve_dtype,
)
from saladpipe.pipeline.models.placeholder import ensure_placeholder_models
from saladpipe.pipeline.models.speech_lm import AdapterConfig, FrameStackAdapter, SpeechAdaptedLM

__all__ = [
    "AdapterConfig",
    "FrameStackAdapter",
    "SpeechAdaptedLM",
    "Teacher",
    "check_shared_vocabulary",
    "ensure_placeholder_models",
    "fingerprint_dir",
    "load_student",
    "load_teacher",
    "resolve_device",
    "resolve_dtype",
]
