"""Engine registry: adding an engine is one module plus one `register_engine` line here,
or, outside the package, one `register_engine` call in the module that defines it."""

from __future__ import annotations

from pydantic import BaseModel

from saladpipe.data_schemas.config import TTSSection, VoiceSpec
from saladpipe.data_schemas.registry import Registry
from saladpipe.tts.base import EngineOptions, TTSEngine, VoiceInfo
from saladpipe.tts.coqui import CoquiEngine
from saladpipe.tts.espeak import EspeakEngine
from saladpipe.tts.kokoro import KokoroEngine
from saladpipe.tts.piper import PiperEngine

ENGINES: Registry[TTSEngine] = Registry(
    TTSEngine, "engine", "tts", settings="Options", reserved=TTSSection.model_fields
)
register_engine = ENGINES.register

register_engine(PiperEngine)
register_engine(EspeakEngine)
register_engine(CoquiEngine)
register_engine(KokoroEngine)


def engine_class(engine: str | None) -> type[TTSEngine]:
    """The class a config names (a registered name or module:Class); else a config error."""
    return ENGINES.resolve(engine or "")


def voice_engines(tts: TTSSection) -> list[type[TTSEngine]]:
    """The engine class of every voice of the run, in `voice_specs` order."""
    return [engine_class(spec.engine) for spec in tts.voice_specs()]


def engine_options(tts: TTSSection, engine: type[TTSEngine]) -> BaseModel:
    """`engine`'s own options from its `[tts.<name>]` table, validated (its defaults
    without one)."""
    return ENGINES.settings(engine, tts.plugin_tables())


def describe_voice(spec: VoiceSpec, device: str = "cpu") -> VoiceInfo:
    """Resolve a voice as it would run on `device`, without loading it: its name, language,
    licence and whether its clips are the same in every run."""
    return engine_class(spec.engine).describe(spec, device)


def create_engine(spec: VoiceSpec, options: EngineOptions | None = None) -> TTSEngine:
    """Load the voice `spec` names with its engine."""
    return engine_class(spec.engine)(spec, options or EngineOptions())
