"""A run's voices: which voice speaks which text, with which seed, and whether their
licences are acceptable.

Each text's voice is drawn by weight from a hash of the run's seed and the text
id, not from a stream of random numbers: a text keeps its voice however the
texts are sharded, ordered or resumed, and the shares follow the weights. Its
seed is such a hash too (`text_seed`).
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
from collections.abc import Sequence

from saladpipe.data_schemas.config import TTSSection
from saladpipe.data_schemas.errors import ConfigError
from saladpipe.tts.base import VoiceInfo
from saladpipe.tts.licenses import allows_commercial_use
from saladpipe.tts.registry import ENGINES, voice_engines


def stable_hash(seed: int, key: str) -> int:
    """A 64-bit number fixed by the seed and the key (the same in every process and run)."""
    digest = hashlib.blake2b(f"{seed}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def unit_hash(seed: int, key: str) -> float:
    """A number in [0, 1) fixed by the seed and the key, uniform over keys."""
    return stable_hash(seed, key) / 2**64


def text_seed(seed: int, text_id: str, engine: str, voice: str) -> int:
    """The seed a text is spoken with (63 bits): fixed by the run's seed, the text id and
    the voice (its engine and `VoiceInfo.name`, which names the speaker too and not the
    model's path), whatever else the run speaks and however."""
    return stable_hash(seed, f"{text_id}\0{engine}\0{voice}") >> 1


def assign_voices(text_ids: Sequence[str], weights: Sequence[float], seed: int) -> list[int]:
    """The voice number of every text, drawn with probability proportional to its weight."""
    if not weights or min(weights) <= 0:
        raise ValueError("voice weights must be positive")
    bounds = list(itertools.accumulate(weights))
    last = len(bounds) - 1
    return [
        min(bisect.bisect_right(bounds, unit_hash(seed, text_id) * bounds[-1]), last)
        for text_id in text_ids
    ]


def check_voices(tts: TTSSection) -> list[VoiceInfo]:
    """Resolve every voice without loading it and check every `[tts.<engine>]` table
    against its engine's options; refuse non-commercial licences when required."""
    engines = voice_engines(tts)  # first: a module:Class voice registers its engine
    ENGINES.check_tables(tts.plugin_tables())
    infos = []
    for number, (spec, engine) in enumerate(zip(tts.voice_specs(), engines, strict=True)):
        info = engine.describe(spec, tts.device)
        if tts.require_commercial_license and not allows_commercial_use(info.license):
            key = f"tts.voices[{number}]" if tts.voices else "tts.voice"
            raise ConfigError(
                f"config error: {key}: {spec.engine} voice {info.name} is under licence "
                f"{info.license!r}, which does not allow commercial use "
                "(tts.require_commercial_license = true)"
            )
        infos.append(info)
    return infos
