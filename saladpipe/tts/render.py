"""Render: texts through one engine into checked, resampled, encoded clips.

This is the work a TTS worker process does for one job, shared by every engine:
normalise each text where the engine needs it, split it at sentence boundaries
within the engine's limit, synthesize all pieces in batches of similar length,
join each text's pieces with a short pause, check the clip, resample it to the
configured rate and encode it. A failure is returned for its text alone; the
pool decides about retries.
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass

import numpy as np

from saladpipe.data_schemas.config import ClipChecks, TTSSection
from saladpipe.tts.audio import encode, resample
from saladpipe.tts.base import TTSEngine
from saladpipe.tts.checks import check_clip
from saladpipe.tts.normalize import normalize_text
from saladpipe.tts.text_split import split_text

# Silence between the pieces of a text that was split.
PAUSE_S = 0.2


@dataclass(frozen=True)
class RenderSettings:
    """What a worker needs besides its engines (picklable, sent once at start)."""

    sample_rate: int
    audio_format: str
    normalize: str
    max_chars: int | None
    batch_size: int | None
    checks: ClipChecks

    @classmethod
    def of(cls, tts: TTSSection, audio_format: str) -> RenderSettings:
        return cls(
            tts.sample_rate, audio_format, tts.normalize, tts.max_chars, tts.batch_size, tts.checks
        )


@dataclass(frozen=True)
class Request:
    """One text to speak with voice number `voice`; `index` is its place in the caller's list."""

    index: int
    text: str
    voice: int
    seed: int


@dataclass(frozen=True)
class Spoken:
    """A clip that passed its checks, encoded at the configured rate."""

    index: int
    normalized_text: str
    audio: bytes
    duration_s: float


@dataclass(frozen=True)
class Failed:
    """A text without a clip; `retryable` for errors and timeouts, not for failed checks."""

    index: int
    reason: str
    detail: str
    retryable: bool


Outcome = Spoken | Failed


def prepare(engine: TTSEngine, text: str, settings: RenderSettings) -> tuple[str, list[str]]:
    """The text as the engine will read it, and its pieces within the engine's limit."""
    wanted = settings.normalize == "always" or (
        settings.normalize == "auto" and engine.needs_normalization
    )
    spoken = normalize_text(text, engine.voice.language) if wanted else " ".join(text.split())
    limit = min(engine.max_chars, settings.max_chars or engine.max_chars)
    return spoken, split_text(spoken, limit)


def batch_size(engine: TTSEngine, settings: RenderSettings) -> int:
    return settings.batch_size or engine.batch_size


def render(engine: TTSEngine, requests: list[Request], settings: RenderSettings) -> list[Outcome]:
    """Speak every request with `engine`; one outcome per request, in order."""
    if requests:
        _seed(requests[0].seed)
    prepared = [prepare(engine, r.text, settings) for r in requests]
    pieces = [(pos, part) for pos, (_, parts) in enumerate(prepared) for part in parts]
    audio = _synthesize(engine, [part for _, part in pieces], batch_size(engine, settings))
    per_request: list[list[np.ndarray | Exception]] = [[] for _ in requests]
    for (pos, _), result in zip(pieces, audio, strict=True):
        per_request[pos].append(result)
    return [
        _finish(engine, request, spoken, results, settings)
        for request, (spoken, _), results in zip(requests, prepared, per_request, strict=True)
    ]


def _synthesize(engine: TTSEngine, texts: list[str], size: int) -> list[np.ndarray | Exception]:
    """Batches of similar length; a failing batch is retried piece by piece to find the culprit."""
    results: list[np.ndarray | Exception] = [np.zeros(0, np.float32)] * len(texts)
    order = sorted(range(len(texts)), key=lambda i: (-len(texts[i]), i))
    for start in range(0, len(order), size):
        chunk = order[start : start + size]
        try:
            waves = engine.synthesize_batch([texts[i] for i in chunk])
        except Exception as exc:  # isolate the failing piece below
            if len(chunk) == 1:
                results[chunk[0]] = exc
                continue
            for i in chunk:
                try:
                    results[i] = engine.synthesize(texts[i])
                except Exception as piece_exc:
                    results[i] = piece_exc
            continue
        for i, wave in zip(chunk, waves, strict=True):
            results[i] = wave
    return results


def _finish(
    engine: TTSEngine,
    request: Request,
    spoken: str,
    pieces: list[np.ndarray | Exception],
    settings: RenderSettings,
) -> Outcome:
    if not pieces:
        return Failed(request.index, "empty_text", "nothing to speak after normalisation", False)
    errors = [p for p in pieces if isinstance(p, Exception)]
    if errors:
        detail = f"{type(errors[0]).__name__}: {errors[0]}"
        return Failed(request.index, "tts_error", detail, True)
    native = _join([np.asarray(p, np.float32).reshape(-1) for p in pieces], engine.sample_rate)
    problem = check_clip(native, engine.sample_rate, spoken, settings.checks)
    if problem is not None:
        return Failed(request.index, problem.split(":")[0], problem, False)
    samples = resample(native, engine.sample_rate, settings.sample_rate)
    audio = encode(samples, settings.sample_rate, settings.audio_format)
    return Spoken(request.index, spoken, audio, samples.size / settings.sample_rate)


def _join(waves: list[np.ndarray], sample_rate: int) -> np.ndarray:
    if len(waves) == 1:
        return waves[0]
    pause = np.zeros(round(PAUSE_S * sample_rate), np.float32)
    joined = [waves[0]]
    for wave in waves[1:]:
        joined += [pause, wave]
    return np.concatenate(joined)


def _seed(seed: int) -> None:
    """Seed every generator an engine may draw from, so a job's output follows the run's seed."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)
