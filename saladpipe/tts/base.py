"""One interface for every TTS engine.

An engine turns one text into mono float32 samples at its native rate. Loading a
model happens once, in the constructor; `synthesize` is called per text. The
pipeline resamples, checks and encodes; engines do only synthesis.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class VoiceInfo:
    """A voice an engine offers, with the licence its audio is under."""

    name: str
    language: str
    license: str


class TTSEngine(ABC):
    """Base of all engines; subclasses register themselves in `saladpipe.tts.registry`."""

    #: Registry name, also written to every clip's `tts_engine` column.
    name: str = ""

    @property
    @abstractmethod
    def sample_rate(self) -> int:
        """Native sample rate of the samples `synthesize` returns."""

    @property
    @abstractmethod
    def voice(self) -> VoiceInfo:
        """The voice this engine instance speaks with."""

    @abstractmethod
    def synthesize(self, text: str) -> np.ndarray:
        """Speak `text`; return mono float32 samples in [-1, 1] at `sample_rate`."""
