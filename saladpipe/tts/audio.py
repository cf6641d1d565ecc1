"""Audio helpers shared by every engine: resampling and encoding."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf
import soxr

_FORMATS = {"flac": ("FLAC", "PCM_16"), "wav": ("WAV", "PCM_16"), "opus": ("OGG", "OPUS")}


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Band-limited resampling (soxr, high quality); a no-op when the rates match."""
    if from_rate == to_rate or samples.size == 0:
        return samples.astype(np.float32, copy=False)
    return soxr.resample(samples.astype(np.float32, copy=False), from_rate, to_rate, quality="HQ")


def encode(samples: np.ndarray, sample_rate: int, audio_format: str) -> bytes:
    """Encode mono float samples as FLAC or WAV (16-bit PCM) bytes."""
    container, subtype = _FORMATS[audio_format]
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(samples, -1.0, 1.0), sample_rate, format=container, subtype=subtype)
    return buffer.getvalue()


def decode(data: bytes) -> tuple[np.ndarray, int]:
    """Decode encoded audio bytes into mono float32 samples and their rate."""
    samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=False)
    if samples.ndim > 1:
        samples = samples.mean(axis=1)
    return samples, int(rate)
