"""Whisper heard through a window shorter than its 30 s.

Whisper pads every input to 30 s. A few-second clip heard through a 10 s window (the
encoder's position table cut to its first third, the front end padding to 10 s)
costs a third, and the first positions still place its frames: the student's encoder
and the ASR check's short route both cut the same way, here.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any


def window_positions(seconds: int, sampling_rate: int, hop_length: int, limit: int) -> int:
    """Encoder positions of a `seconds` window (two mel frames a position); refused when
    longer than the checkpoint's `limit` positions."""
    positions = seconds * sampling_rate // hop_length // 2
    if positions > limit:
        raise ValueError(
            f"window_s {seconds} is longer than the checkpoint's "
            f"{limit * 2 * hop_length // sampling_rate} s window"
        )
    return positions


def cut_positions(state: MutableMapping[str, Any], key: str, positions: int) -> None:
    """Keep the first `positions` rows of the position table `key` of a state dict."""
    state[key] = state[key][:positions]


def window_features(
    mel_bins: int, sampling_rate: int, hop_length: int, n_fft: int, seconds: int
) -> Any:
    """Whisper's front end padding to `seconds` instead of 30."""
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor(
        feature_size=mel_bins,
        sampling_rate=sampling_rate,
        hop_length=hop_length,
        n_fft=n_fft,
        chunk_length=seconds,
    )
