"""Speech synthesis: one engine interface, resampling, encoding and clip checks."""

from saladpipe.tts.base import TTSEngine, VoiceInfo
from saladpipe.tts.checks import ClipLimits, check_clip
from saladpipe.tts.registry import ENGINES, create_engine

__all__ = ["ENGINES", "ClipLimits", "TTSEngine", "VoiceInfo", "check_clip", "create_engine"]
