"""One interface for every TTS engine.

An engine instance is one voice: a model (loaded once, in the constructor) and,
for multi-speaker models, one of its speakers. `synthesize` turns one text piece
into mono float32 samples at the engine's native rate; `synthesize_batch` does
several at once where the model can (the default speaks them one by one).
Everything around it (normalisation, splitting, joining, checks, resampling,
encoding, retries, worker processes) is shared, in `render` and `pool`.

`describe` resolves a voice without loading it (paths, licence, language), so a
run can refuse a bad voice or a non-commercial licence before anything runs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from saladpipe.data_schemas.config import VoiceSpec


@dataclass(frozen=True)
class VoiceInfo:
    """A voice as recorded with every clip: its name, language and licence."""

    name: str
    language: str
    license: str


@dataclass(frozen=True)
class EngineOptions:
    """How an engine runs in this process: device ("cpu", "cuda", "cuda:1"), CPU threads,
    and the number format of a neural vocoder ("auto": bfloat16 where the device has it)."""

    device: str = "cpu"
    threads: int = 1
    precision: str = "auto"


class TTSEngine(ABC):
    """Base of all engines; each registers itself in `saladpipe.tts.registry`."""

    #: Registry name, also written to every clip's `tts_engine` column.
    name: ClassVar[str] = ""
    #: The voice used when the config names none; None means the engine needs one.
    default_voice: ClassVar[str | None] = None
    #: Longest text piece one call speaks well; longer texts are split before synthesis.
    max_chars: int = 1000
    #: Pieces per `synthesize_batch` call when the config sets no batch size.
    batch_size: int = 1
    #: False when the engine's own front end already spells out numbers and abbreviations.
    needs_normalization: bool = True

    def __init__(self, spec: VoiceSpec, options: EngineOptions) -> None:
        self.spec = spec
        self.options = options
        self.voice = self.describe(spec)

    @classmethod
    @abstractmethod
    def describe(cls, spec: VoiceSpec) -> VoiceInfo:
        """Resolve `spec` without loading a model; a bad voice raises ConfigError."""

    @classmethod
    @abstractmethod
    def list_voices(cls) -> list[str]:
        """Voices this engine can load by name (without a path)."""

    @property
    @abstractmethod
    def sample_rate(self) -> int:
        """Native sample rate of the samples `synthesize` returns."""

    @abstractmethod
    def speakers(self) -> list[str]:
        """Speakers of the loaded voice that `VoiceSpec.speaker` accepts (empty: one speaker)."""

    @abstractmethod
    def synthesize(self, text: str) -> np.ndarray:
        """Speak one piece of text; return mono float32 samples in [-1, 1] at `sample_rate`."""

    def synthesize_batch(self, texts: list[str]) -> list[np.ndarray]:
        """Speak several pieces; engines that batch at the model level override this."""
        return [self.synthesize(text) for text in texts]
