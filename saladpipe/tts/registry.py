"""Engine registry: adding an engine is one module plus one line here."""

from __future__ import annotations

from collections.abc import Callable

from saladpipe.data_schemas.errors import ConfigError
from saladpipe.tts.base import TTSEngine
from saladpipe.tts.piper import PiperEngine

ENGINES: dict[str, Callable[[str], TTSEngine]] = {
    PiperEngine.name: PiperEngine,
}


def create_engine(engine: str, voice: str) -> TTSEngine:
    """Build the named engine with `voice`; an unknown name is a config error."""
    try:
        factory = ENGINES[engine]
    except KeyError:
        known = ", ".join(sorted(ENGINES))
        raise ConfigError(
            f"config error: tts.engine: unknown engine {engine!r} (have: {known})"
        ) from None
    return factory(voice)
