"""One interface for every TTS engine.

An engine instance is one voice: a model (loaded once, in the constructor) and,
for multi-speaker models, one of its speakers. `synthesize` turns one text piece
into mono float32 samples at the engine's native rate; `synthesize_batch` does
several at once where the model can (the default speaks them one by one).
Everything around it (normalisation, splitting, joining, checks, resampling,
encoding, retries, worker processes) is shared, in `render` and `pool`.

Every piece comes with a seed, and whatever an engine samples it draws from that
seed alone: a clip is a function of (voice, text piece, seed), never of the other
pieces of its batch, job or worker, so two runs of a config give the same audio
however texts are batched, sharded, ordered, retried or resumed. An engine that
cannot promise this says so (`deterministic`), and the run's manifest records it.

`describe` resolves a voice without loading it (paths, licence, language,
determinism), so a run can refuse a bad voice or a non-commercial licence before
anything runs.

An engine carries its own needs, so that nothing outside its module names it: its
options (`Options`, read from the config table `[tts.<name>]`), whether a device
setting puts it on a GPU (`wants_gpu`), the packages whose versions shape its audio
(`packages`, recorded in the manifest) and its default licence.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from saladpipe.data_schemas.config import VoiceSpec
from saladpipe.tts.licenses import UNKNOWN, canonical_license

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class VoiceInfo:
    """A voice as recorded with every clip (its name, language and licence), and whether
    its clips are the same, byte for byte, in every run (see `TTSEngine.deterministic`)."""

    name: str
    language: str
    license: str
    deterministic: bool


@dataclass(frozen=True)
class EngineOptions:
    """How an engine runs in this process: device ("cpu", "cuda", "cuda:1"), CPU threads,
    and the engine's own options (its `Options`, validated from `[tts.<name>]`; None: its
    defaults)."""

    device: str = "cpu"
    threads: int = 1
    own: BaseModel | None = None

    def of(self, kind: type[M]) -> M:
        """The engine's own options as `kind`, the engine's `Options` (its defaults when
        none were given)."""
        if self.own is None:
            return kind()
        if not isinstance(self.own, kind):
            raise TypeError(f"engine options are {type(self.own).__qualname__}, not {kind}")
        return self.own


class TTSEngine(ABC):
    """Base of all engines; each is registered in `saladpipe.tts.registry` (or, outside
    the package, with `register_engine`)."""

    class Options(BaseModel):
        """The engine's own settings, from its config table `[tts.<name>]`; subclass it
        (frozen, unknown keys refused) to add some. This base has none."""

        model_config = ConfigDict(extra="forbid", frozen=True)

    #: Registry name, also written to every clip's `tts_engine` column.
    name: ClassVar[str] = ""
    #: Python distributions whose versions shape this engine's audio (the manifest's versions).
    packages: ClassVar[tuple[str, ...]] = ()
    #: Licence of a voice whose config and files name none (None: "unknown").
    default_license: ClassVar[str | None] = None
    #: The voice used when the config names none; None means the engine needs one.
    default_voice: ClassVar[str | None] = None
    #: Longest text piece one call speaks well; longer texts are split before synthesis.
    max_chars: int = 1000
    #: Pieces per `synthesize_batch` call when the config sets no batch size.
    batch_size: int = 1
    #: False when the engine's own front end already spells out numbers and abbreviations.
    needs_normalization: bool = True
    #: True when a clip is a pure function of (voice, text piece, seed), the same bytes in
    #: every run on the same machine; `describe` refines it per voice and device, and the
    #: instance takes its voice's answer.
    deterministic: bool = False

    def __init__(self, spec: VoiceSpec, options: EngineOptions) -> None:
        self.spec = spec
        self.options = options
        self.voice = self.describe(spec, options.device)
        self.deterministic = self.voice.deterministic

    @classmethod
    def wants_gpu(cls, device: str, cuda_available: bool) -> bool:
        """Whether a voice of this engine holds a GPU with `tts.device = device`: by default
        only for an explicit cuda device (an engine that picks one for "auto" says so)."""
        return device.startswith("cuda")

    @classmethod
    def voice_license(cls, spec: VoiceSpec, found: str | None = None) -> str:
        """The licence recorded with a voice's clips: the config's, else the one the voice
        declares (`found`), else the engine's default, else unknown."""
        if spec.license:
            return canonical_license(spec.license)
        return found or cls.default_license or UNKNOWN

    @classmethod
    @abstractmethod
    def describe(cls, spec: VoiceSpec, device: str = "cpu") -> VoiceInfo:
        """Resolve `spec`, as it would run on `device`, without loading a model; a bad voice
        raises ConfigError."""

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
    def synthesize(self, text: str, seed: int) -> np.ndarray:
        """Speak one piece of text, sampling from `seed` alone; return mono float32 samples
        in [-1, 1] at `sample_rate`."""

    def synthesize_batch(self, texts: list[str], seeds: list[int]) -> list[np.ndarray]:
        """Speak several pieces, each with its own seed, each clip as if spoken alone;
        engines that batch at the model level override this."""
        return [self.synthesize(text, seed) for text, seed in zip(texts, seeds, strict=True)]
