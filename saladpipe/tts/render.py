"""Render: texts through one engine into checked, resampled, encoded clips.

This is the work a TTS worker process does for one job, shared by every engine:
normalise each text where the engine needs it, split it at sentence boundaries
within the engine's limit, synthesize all pieces in batches of similar length,
join each text's pieces with a short pause, check the clip, resample it to the
configured rate and encode it. A failure is returned for its text alone; the
pool decides about retries.

Each piece is spoken with a seed derived from its text's seed and its place in the
text (`piece_seed`), so a clip does not depend on the job it was sent in.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from saladpipe.data_schemas.config import ClipChecks, TTSSection
from saladpipe.tts.audio import encode, resample
from saladpipe.tts.base import TTSEngine
from saladpipe.tts.checks import check_clip
from saladpipe.tts.normalize import normalize_text, unspoken_removed
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
    """One text to speak with voice number `voice` and everything it samples drawn from
    `seed`; `index` is its place in the caller's list."""

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
    spoken = (
        normalize_text(text, engine.voice.language)
        if wanted
        else " ".join(unspoken_removed(text).split())
    )
    limit = min(engine.max_chars, settings.max_chars or engine.max_chars)
    return spoken, split_text(spoken, limit)


def batch_size(engine: TTSEngine, settings: RenderSettings) -> int:
    return settings.batch_size or engine.batch_size


def piece_seed(seed: int, piece: int) -> int:
    """The seed of piece number `piece` of a text with `seed` (63 bits: torch takes it too)."""
    state = np.random.SeedSequence([seed, piece]).generate_state(1, np.uint64)
    return int(state[0]) >> 1


def render(engine: TTSEngine, requests: list[Request], settings: RenderSettings) -> list[Outcome]:
    """Speak every request with `engine`; one outcome per request, in order.

    A text is checked, resampled and encoded in a second thread as soon as its last
    piece is synthesized, while the engine goes on with the next batch (engines and
    encoders release the GIL), so the finishing work hides behind the synthesis.
    """
    prepared = [prepare(engine, r.text, settings) for r in requests]
    owners = [(pos, slot) for pos, (_, parts) in enumerate(prepared) for slot in range(len(parts))]
    texts = [prepared[pos][1][slot] for pos, slot in owners]
    seeds = [piece_seed(requests[pos].seed, slot) for pos, slot in owners]
    pieces: list[list[np.ndarray | Exception]] = [
        [np.zeros(0, np.float32)] * len(parts) for _, parts in prepared
    ]
    waiting = [len(parts) for _, parts in prepared]

    def finish(pos: int) -> Future[Outcome]:
        request, spoken = requests[pos], prepared[pos][0]
        return _finisher().submit(_finish, engine, request, spoken, pieces[pos], settings)

    done = {pos: finish(pos) for pos, n in enumerate(waiting) if n == 0}
    for chunk, results in _synthesize(engine, texts, seeds, batch_size(engine, settings)):
        for i, result in zip(chunk, results, strict=True):
            pos, slot = owners[i]
            pieces[pos][slot] = result
            waiting[pos] -= 1
            if waiting[pos] == 0:
                done[pos] = finish(pos)
    return [done[pos].result() for pos in range(len(requests))]


@functools.cache
def _finisher() -> ThreadPoolExecutor:
    """The one thread of this process that checks, resamples and encodes finished texts."""
    return ThreadPoolExecutor(1, thread_name_prefix="saladpipe-finish")


def _synthesize(
    engine: TTSEngine, texts: list[str], seeds: list[int], size: int
) -> Iterator[tuple[list[int], list[np.ndarray | Exception]]]:
    """Batches of similar length, as (indices, audio or error) when each is done; a failing
    batch is retried piece by piece to find the culprit."""
    order = sorted(range(len(texts)), key=lambda i: (-len(texts[i]), i))
    for start in range(0, len(order), size):
        chunk = order[start : start + size]
        try:
            yield (
                chunk,
                list(engine.synthesize_batch([texts[i] for i in chunk], [seeds[i] for i in chunk])),
            )
        except Exception as exc:  # isolate the failing piece below
            if len(chunk) == 1:
                yield chunk, [exc]
                continue
            yield chunk, [_synthesize_one(engine, texts[i], seeds[i]) for i in chunk]


def _synthesize_one(engine: TTSEngine, text: str, seed: int) -> np.ndarray | Exception:
    try:
        return engine.synthesize(text, seed)
    except Exception as exc:
        return exc


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
