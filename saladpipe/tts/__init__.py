"""Speech synthesis: one engine interface, worker processes, text handling and clip checks."""

from saladpipe.tts.base import EngineOptions, TTSEngine, VoiceInfo
from saladpipe.tts.checks import check_clip
from saladpipe.tts.registry import ENGINES, create_engine, describe_voice, register_engine
from saladpipe.tts.service import Rejected, SpeechService, SpokenText

__all__ = [
    "ENGINES",
    "EngineOptions",
    "Rejected",
    "SpeechService",
    "SpokenText",
    "TTSEngine",
    "VoiceInfo",
    "check_clip",
    "create_engine",
    "describe_voice",
    "register_engine",
]
