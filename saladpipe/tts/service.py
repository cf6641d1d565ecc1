"""The synthesis layer as one object: the run's voices in worker processes, and the ASR check.

`SpeechService.speak` takes (text_id, text) pairs and returns, in the same order,
a clip or the reason there is none. Voices are chosen per text by weight with
the run's seed, and each text is spoken with a seed of its own (run seed, text id,
voice), so a deterministic voice gives the same clip in every run; licences are
checked before any worker starts; clips that fail the optional ASR round trip are
rejected like any other failed check.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType

from saladpipe.data_schemas.config import TTSSection
from saladpipe.data_schemas.heavy import Heavy
from saladpipe.tts.asr import (
    ASR_REJECTED,
    Transcriber,
    character_error_rate,
    rejection_detail,
)
from saladpipe.tts.audio import decode
from saladpipe.tts.base import EngineOptions, VoiceInfo
from saladpipe.tts.pool import EngineFactory, VoiceReport, VoiceSetup, WorkerPool
from saladpipe.tts.registry import engine_options, voice_engines
from saladpipe.tts.render import Failed, Outcome, RenderSettings, Request, Spoken
from saladpipe.tts.voices import assign_voices, check_voices, text_seed

logger = logging.getLogger("saladpipe")


@dataclass(frozen=True)
class SpokenText:
    """A checked clip of one text and everything recorded with it."""

    text_id: str
    text: str
    normalized_text: str
    audio: bytes
    sampling_rate: int
    duration_s: float
    engine: str
    voice: str
    license: str
    asr_cer: float | None


@dataclass(frozen=True)
class Rejected:
    """A text without a clip, and why."""

    text_id: str
    text: str
    reason: str
    detail: str


def worker_threads(tts: TTSSection) -> int:
    """CPU threads per worker: configured, else the cores shared out among the workers."""
    return tts.threads_per_worker or max(1, len(os.sched_getaffinity(0)) // tts.workers)


class SpeechService:
    """Speaks texts with a run's voices; start once per process, reuse for every shard.

    `factory`, where given, loads every voice in place of its engine (tests use it to
    inject faults); the voice's engine still gives its options.
    """

    def __init__(
        self,
        tts: TTSSection,
        audio_format: str,
        seed: int,
        factory: EngineFactory | None = None,
    ) -> None:
        self.tts = tts
        self.audio_format = audio_format
        self.seed = seed
        self.voices: list[VoiceInfo] = check_voices(tts)
        engines = voice_engines(tts)
        self._weights = [spec.weight for spec in tts.voice_specs()]
        self._voice_ids = [
            (engine.name, info.name) for engine, info in zip(engines, self.voices, strict=True)
        ]
        threads = worker_threads(tts)
        voices = [
            VoiceSetup(
                factory or engine,
                spec,
                EngineOptions(tts.device, threads, engine_options(tts, engine)),
            )
            for engine, spec in zip(engines, tts.voice_specs(), strict=True)
        ]
        self._pool = WorkerPool(
            voices,
            RenderSettings.of(tts, audio_format),
            workers=tts.workers,
            timeout_s=tts.timeout_s,
            retries=tts.retries,
        ).start()
        self._transcriber: Transcriber | None = None
        self._lock = threading.Lock()
        self._asr_lock = threading.Lock()

    @property
    def reports(self) -> list[VoiceReport]:
        """Each voice as its worker loaded it: engine, sample rate, batch size, speakers."""
        return self._pool.reports

    def speak(
        self,
        items: Sequence[tuple[str, str]],
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> list[SpokenText | Rejected]:
        """A clip or a rejection for every (text_id, text), in order."""
        voices = assign_voices([text_id for text_id, _ in items], self._weights, self.seed)
        requests = [
            Request(i, text, voice, text_seed(self.seed, text_id, *self._voice_ids[voice]))
            for i, ((text_id, text), voice) in enumerate(zip(items, voices, strict=True))
        ]
        # The pool spreads one call over its workers; calls from several threads (shard
        # tasks run at once) take turns, as their requests share the workers' pipes. The
        # ASR check takes turns on a lock of its own, so one shard's clips are heard while
        # the workers speak the next shard's.
        with self._lock:
            results = self._speak(items, voices, requests, on_outcome)
        if self.tts.asr is None:
            return results
        languages = [self._pool.reports[v].info.language for v in voices]
        with self._asr_lock:
            return self._asr_check(results, languages)

    def _speak(
        self,
        items: Sequence[tuple[str, str]],
        voices: list[int],
        requests: list[Request],
        on_outcome: Callable[[Outcome], None] | None,
    ) -> list[SpokenText | Rejected]:
        outcomes = self._pool.run(requests, on_outcome)
        rss = [f"{b / 2**20:.0f} MB" for b in self._pool.worker_rss_bytes()]
        logger.info("tts workers' resident memory: %s", ", ".join(rss))
        return [
            self._result(item, voice, outcome)
            for item, voice, outcome in zip(items, voices, outcomes, strict=True)
        ]

    def _result(self, item: tuple[str, str], voice: int, outcome: Outcome) -> SpokenText | Rejected:
        text_id, text = item
        if isinstance(outcome, Failed):
            return Rejected(text_id, text, outcome.reason, outcome.detail)
        assert isinstance(outcome, Spoken)
        report = self._pool.reports[voice]
        return SpokenText(
            text_id,
            text,
            outcome.normalized_text,
            outcome.audio,
            self.tts.sample_rate,
            outcome.duration_s,
            report.engine,
            report.info.name,
            report.info.license,
            None,
        )

    def _asr_check(
        self, results: list[SpokenText | Rejected], languages: list[str]
    ) -> list[SpokenText | Rejected]:
        """Transcribe every clip; record its CER, reject it above tts.asr.max_cer."""
        assert self.tts.asr is not None
        if self._transcriber is None:
            self._transcriber = Transcriber(self.tts.asr)
        spoken = {i: r for i, r in enumerate(results) if isinstance(r, SpokenText)}
        heard: dict[int, str] = {}
        for language in sorted(set(languages)):
            group = [i for i in spoken if languages[i] == language]
            clips = [decode(spoken[i].audio)[0] for i in group]
            texts = self._transcriber.transcribe(clips, self.tts.sample_rate, language)
            heard.update(zip(group, texts, strict=True))
        limit = self.tts.asr.max_cer
        checked: list[SpokenText | Rejected] = []
        for i, result in enumerate(results):
            if isinstance(result, Rejected):
                checked.append(result)
                continue
            cer = character_error_rate(result.normalized_text, heard[i], languages[i])
            if limit is not None and cer > limit:
                detail = rejection_detail(cer, limit, heard[i])
                checked.append(Rejected(result.text_id, result.text, ASR_REJECTED, detail))
            else:
                checked.append(dataclasses.replace(result, asr_cer=round(cer, 4)))
        return checked

    def close(self) -> None:
        """Stop the worker processes."""
        self._pool.close()

    def __enter__(self) -> SpeechService:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@dataclass(frozen=True)
class SpeechSpec(Heavy[SpeechService]):
    """The run's voices in their worker processes, started once per worker and closed when
    the run ends; `seed` is the run's, from which every text's seed is drawn."""

    tts: TTSSection
    audio_format: str
    seed: int
    kind = "speech_service"

    def build(self) -> SpeechService:
        return SpeechService(self.tts, self.audio_format, self.seed)
