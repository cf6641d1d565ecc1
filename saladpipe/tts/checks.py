"""Checks that a clip is speech of its text, before it reaches a shard.

A clip that fails goes to quarantine with the reason; it is never written as if
it were good. The ranges are `tts.checks` of the config (`ClipChecks`).
"""

from __future__ import annotations

import numpy as np

from saladpipe.data_schemas.config import ClipChecks


def rms_dbfs(samples: np.ndarray) -> float:
    """Root-mean-square level in dB relative to full scale; -inf for silence."""
    if samples.size == 0:
        return float("-inf")
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return 20.0 * np.log10(rms) if rms > 0 else float("-inf")


def voiced_fraction(samples: np.ndarray, sample_rate: int, threshold_dbfs: float = -40.0) -> float:
    """Share of 20 ms frames louder than the threshold: speech has many, silence none."""
    frame = max(1, sample_rate // 50)
    n = samples.size // frame
    if n == 0:
        return 0.0
    frames = samples[: n * frame].reshape(n, frame).astype(np.float64)
    levels = 10.0 * np.log10(np.mean(frames**2, axis=1) + 1e-20)
    return float(np.mean(levels > threshold_dbfs))


def check_clip(samples: np.ndarray, sample_rate: int, text: str, limits: ClipChecks) -> str | None:
    """Return None for a good clip, else a short reason naming what is wrong."""
    if samples.size == 0:
        return "empty_audio"
    if not np.all(np.isfinite(samples)):
        return "non_finite_samples"
    duration = samples.size / sample_rate
    chars = max(1, len(text.strip()))
    low = chars * limits.min_seconds_per_char - limits.slack_seconds
    high = chars * limits.max_seconds_per_char + limits.slack_seconds
    if duration < low:
        return f"too_short: {duration:.2f}s for {chars} chars (min {low:.2f}s)"
    if duration > high:
        return f"too_long: {duration:.2f}s for {chars} chars (max {high:.2f}s)"
    if duration > limits.max_duration_s:
        return f"over_max_duration: {duration:.2f}s (max {limits.max_duration_s:.2f}s)"
    level = rms_dbfs(samples)
    if level < limits.min_rms_dbfs:
        return f"silent: {level:.1f} dBFS (min {limits.min_rms_dbfs:.1f})"
    voiced = voiced_fraction(samples, sample_rate)
    if voiced < limits.min_voiced_fraction:
        return f"mostly_silent: {voiced:.2f} voiced (min {limits.min_voiced_fraction:.2f})"
    clipped = float(np.mean(np.abs(samples) >= 0.999))
    if clipped > limits.max_clipped_fraction:
        return f"clipped: {clipped:.4f} of samples at full scale"
    return None
