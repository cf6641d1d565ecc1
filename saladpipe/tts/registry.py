"""Engine registry: adding an engine is one module plus one line here."""

from __future__ import annotations

from saladpipe.data_schemas.config import VoiceSpec
from saladpipe.data_schemas.errors import ConfigError
from saladpipe.tts.base import EngineOptions, TTSEngine, VoiceInfo
from saladpipe.tts.coqui import CoquiEngine
from saladpipe.tts.espeak import EspeakEngine
from saladpipe.tts.piper import PiperEngine

ENGINES: dict[str, type[TTSEngine]] = {
    PiperEngine.name: PiperEngine,
    EspeakEngine.name: EspeakEngine,
    CoquiEngine.name: CoquiEngine,
}


def engine_class(engine: str | None) -> type[TTSEngine]:
    """The class registered under `engine`; an unknown name is a config error."""
    try:
        return ENGINES[engine or ""]
    except KeyError:
        known = ", ".join(sorted(ENGINES))
        raise ConfigError(
            f"config error: tts.engine: unknown engine {engine!r} (have: {known})"
        ) from None


def describe_voice(spec: VoiceSpec, device: str = "cpu") -> VoiceInfo:
    """Resolve a voice as it would run on `device`, without loading it: its name, language,
    licence and whether its clips are the same in every run."""
    return engine_class(spec.engine).describe(spec, device)


def create_engine(spec: VoiceSpec, options: EngineOptions | None = None) -> TTSEngine:
    """Load the voice `spec` names with its engine."""
    return engine_class(spec.engine)(spec, options or EngineOptions())
