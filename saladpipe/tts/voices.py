"""A run's voices: which voice speaks which text, and whether their licences are acceptable.

Each text's voice is drawn by weight from a hash of the run's seed and the text
id, not from a stream of random numbers: a text keeps its voice however the
texts are sharded, ordered or resumed, and the shares follow the weights.
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
from saladpipe.tts.registry import describe_voice


def unit_hash(seed: int, key: str) -> float:
    """A number in [0, 1) fixed by the seed and the key, uniform over keys."""
    digest = hashlib.blake2b(f"{seed}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


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
    """Resolve every voice without loading it; refuse non-commercial licences when required."""
    infos = []
    for number, spec in enumerate(tts.voice_specs()):
        info = describe_voice(spec)
        if tts.require_commercial_license and not allows_commercial_use(info.license):
            key = f"tts.voices[{number}]" if tts.voices else "tts.voice"
            raise ConfigError(
                f"config error: {key}: {spec.engine} voice {info.name} is under licence "
                f"{info.license!r}, which does not allow commercial use "
                "(tts.require_commercial_license = true)"
            )
        infos.append(info)
    return infos
