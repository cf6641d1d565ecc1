"""Budgets: how much a round may select, in texts, hours of audio or tokens.

A budget is a limit and a cost per text in the limit's unit. Texts cost 1; audio
costs the seconds a text will probably take to speak, from a rate fitted to what was
already synthesized; tokens cost the text's length in the teacher's tokenizer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from saladpipe.selectors.errors import SelectionError


@dataclass(frozen=True)
class Budget:
    """At most `limit` units; `cost(rows)` gives each pool row's units (None: 1 per text)."""

    limit: float
    unit: str = "texts"
    cost: Callable[[np.ndarray], np.ndarray] | None = None

    def __post_init__(self) -> None:
        if not np.isfinite(self.limit) or self.limit <= 0:
            raise SelectionError(f"a budget must be a positive number of {self.unit}")

    def costs(self, rows: np.ndarray) -> np.ndarray:
        """Cost of each row; a negative or non-finite cost is an error naming the row."""
        if self.cost is None:
            return np.ones(rows.size, dtype=np.float64)
        values = np.asarray(self.cost(rows), dtype=np.float64)
        bad = ~np.isfinite(values) | (values < 0)
        if bad.any():
            raise SelectionError(
                f"budget cost in {self.unit} is negative or not finite for rows "
                f"{rows[bad][:10].tolist()}"
            )
        return values


@dataclass(frozen=True)
class SpeechRate:
    """Seconds of speech for a text of n characters: intercept_s + per_char_s · n."""

    intercept_s: float
    per_char_s: float
    samples: int  # clips the rate was fitted on; 0 means the default

    def seconds(self, n_chars: np.ndarray) -> np.ndarray:
        return self.intercept_s + self.per_char_s * np.asarray(n_chars, dtype=np.float64)


# Read English at about 14 characters a second: used until something has been synthesized.
DEFAULT_SPEECH_RATE = SpeechRate(intercept_s=0.0, per_char_s=1.0 / 14.0, samples=0)


def fit_speech_rate(n_chars: np.ndarray, seconds: np.ndarray) -> SpeechRate:
    """Least-squares line through (characters, seconds) of synthesized clips.

    The intercept (leading and trailing silence) is kept non-negative; with fewer than
    two distinct lengths the rate is the plain ratio of totals.
    """
    chars = np.asarray(n_chars, dtype=np.float64)
    secs = np.asarray(seconds, dtype=np.float64)
    usable = np.isfinite(secs) & (secs > 0) & (chars > 0)
    chars, secs = chars[usable], secs[usable]
    if chars.size == 0:
        return DEFAULT_SPEECH_RATE
    if np.unique(chars).size >= 2:
        slope, intercept = np.polyfit(chars, secs, 1)
        if intercept >= 0 and slope > 0:
            return SpeechRate(float(intercept), float(slope), int(chars.size))
        through_origin = float(chars @ secs / (chars @ chars))
        if through_origin > 0:
            return SpeechRate(0.0, through_origin, int(chars.size))
    return SpeechRate(0.0, float(secs.sum() / chars.sum()), int(chars.size))
