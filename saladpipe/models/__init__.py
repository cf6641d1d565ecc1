"""Scoring models: the teacher text LM, the student kinds, and how to load them.

Importing this package loads torch and transformers; import it only where models run.
"""

from saladpipe.models.loading import (
    STUDENT_KINDS,
    Teacher,
    check_shared_vocabulary,
    fingerprint_dir,
    load_student,
    load_teacher,
    model_id,
    resolve_device,
    resolve_dtype,
)
from saladpipe.models.placeholder import ensure_placeholder_models
from saladpipe.models.qwen2_audio import Qwen2AudioStudent
from saladpipe.models.speech_lm import AdapterConfig, FrameStackAdapter, SpeechAdaptedLM
from saladpipe.models.student import Student
from saladpipe.models.text_lm import TextLM

__all__ = [
    "STUDENT_KINDS",
    "AdapterConfig",
    "FrameStackAdapter",
    "Qwen2AudioStudent",
    "SpeechAdaptedLM",
    "Student",
    "Teacher",
    "TextLM",
    "check_shared_vocabulary",
    "ensure_placeholder_models",
    "fingerprint_dir",
    "load_student",
    "load_teacher",
    "model_id",
    "resolve_device",
    "resolve_dtype",
]
