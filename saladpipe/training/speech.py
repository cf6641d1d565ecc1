"""Spoken prefixes for training and evaluation, synthesized once and cached on disk.

Speech goes through the same `SpeechService` as a run's probe clips (Piper, the
joe voice, checks, 16 kHz, FLAC), split by the same rule as the embedded default's
probes, so the student trains on exactly the kind of clip it is later scored on.
Synthesis is the slowest step here, so every clip is kept under the cache folder,
keyed by the speech settings and the text, and shared by builds, arms and seeds. A
text the service rejects is cached with its reason and reported, never dropped
silently.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from saladpipe.corpora.wordnet import Gloss
from saladpipe.data_schemas.config import ProbeSection, TTSSection
from saladpipe.data_schemas.io import atomic_path, write_text
from saladpipe.pipeline.probe import split_text
from saladpipe.progress import Progress
from saladpipe.training.optim import cpu_threads
from saladpipe.tts import Rejected, SpeechService
from saladpipe.tts.audio import decode

SAMPLE_RATE = 16000
# The embedded default's probe split: the first half of the words is spoken.
PROBE_SPLIT = ProbeSection()


def speech_settings(voice: str) -> TTSSection:
    """Piper with `voice` at 16 kHz, one worker process per core."""
    return TTSSection(
        engine="piper", voice=voice, sample_rate=SAMPLE_RATE, workers=max(1, cpu_threads())
    )


@dataclass(frozen=True)
class SpokenPrefix:
    """A gloss split into a spoken prefix (its audio) and a text continuation."""

    gloss: Gloss
    prefix: str
    continuation: str
    audio: np.ndarray  # float32 mono at SAMPLE_RATE

    @property
    def text_id(self) -> str:
        return self.gloss.synset_id

    @property
    def domain(self) -> str:
        return self.gloss.domain


@dataclass
class SpeechReport:
    """Texts asked for, clips synthesized now, and texts without a clip by reason."""

    asked: int = 0
    synthesized: int = 0
    rejected: Counter[str] = field(default_factory=Counter)

    def add(self, other: SpeechReport) -> None:
        self.asked += other.asked
        self.synthesized += other.synthesized
        self.rejected.update(other.rejected)


class ClipCache:
    """Clips of texts under `root`, one FLAC file a text (or its rejection reason).

    The speech workers start at the first clip missing and stay until `close`, so
    that many small requests (one per arm and budget) pay their start-up once.
    """

    def __init__(self, root: Path, tts: TTSSection) -> None:
        settings = hashlib.sha256(tts.model_dump_json().encode()).hexdigest()[:16]
        self.folder = root / "speech" / settings
        self.tts = tts
        self._service: SpeechService | None = None

    def close(self) -> None:
        if self._service is not None:
            self._service.close()
            self._service = None

    def __enter__(self) -> ClipCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _path(self, key: str, suffix: str) -> Path:
        return self.folder / key[:2] / f"{key}{suffix}"

    def clip_path(self, text: str) -> Path:
        """Where the text's clip is kept (it exists once `speak` made it)."""
        return self._path(self.key(text), ".flac")

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def speak(self, texts: Sequence[str], what: str) -> tuple[list[np.ndarray | str], SpeechReport]:
        """Each text's float32 samples, or the reason it has none; missing clips are made."""
        keys = [self.key(t) for t in texts]
        missing = sorted(
            {k: t for k, t in zip(keys, texts, strict=True) if not self._known(k)}.items()
        )
        report = SpeechReport(asked=len(texts))
        if missing:
            report.synthesized = self._synthesize(missing, what)
        results = [self._load(k) for k in keys]
        report.rejected.update(r.split(":")[0] for r in results if isinstance(r, str))
        return results, report

    def missing(self, texts: Sequence[str]) -> int:
        """How many of `texts` have neither a clip nor a rejection yet."""
        return sum(not self._known(self.key(t)) for t in set(texts))

    def _known(self, key: str) -> bool:
        return self._path(key, ".flac").is_file() or self._path(key, ".rejected").is_file()

    def _load(self, key: str) -> np.ndarray | str:
        path = self._path(key, ".flac")
        if path.is_file():
            samples, rate = decode(path.read_bytes())
            if rate != SAMPLE_RATE:
                return f"wrong_rate: cached clip at {rate} Hz"
            return samples.astype(np.float32, copy=False)
        return self._path(key, ".rejected").read_text(encoding="utf-8")

    def _synthesize(self, missing: list[tuple[str, str]], what: str) -> int:
        made = 0
        if self._service is None:
            self._service = SpeechService(self.tts, "flac", seed=0)
        with Progress(f"speak {what}", len(missing), "clips") as progress:
            outcomes = self._service.speak(missing, on_outcome=lambda _: progress.update(1))
        for (key, _), outcome in zip(missing, outcomes, strict=True):
            if isinstance(outcome, Rejected):
                write_text(f"{outcome.reason}: {outcome.detail}", self._path(key, ".rejected"))
                continue
            with atomic_path(self._path(key, ".flac")) as tmp:
                tmp.write_bytes(outcome.audio)
            made += 1
        return made


def prefix_split(gloss: Gloss) -> tuple[str, str]:
    """The spoken prefix of a gloss and its text continuation (as the default's probes)."""
    return split_text(gloss.text, PROBE_SPLIT)


def spoken_prefixes(
    glosses: Sequence[Gloss], cache: ClipCache, what: str
) -> tuple[list[SpokenPrefix], SpeechReport]:
    """The glosses whose prefix could be spoken, split as the default's probes are.

    Glosses have at least six words, so every split leaves a continuation.
    """
    splits = [prefix_split(g) for g in glosses]
    clips, report = cache.speak([prefix for prefix, _ in splits], what)
    spoken = [
        SpokenPrefix(gloss, prefix, continuation, clip)
        for gloss, (prefix, continuation), clip in zip(glosses, splits, clips, strict=True)
        if not isinstance(clip, str)
    ]
    return spoken, report
