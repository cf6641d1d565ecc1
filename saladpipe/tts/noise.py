"""Sampling noise of neural TTS models, drawn per text piece instead of from a global stream.

Piper and Coqui VITS sample a duration noise over the text and a prior noise over the
frames. Drawn from a process-wide generator, a clip depends on everything spoken
before it in its worker (its job, its batch-mates, its retries). Drawn here, a clip is
a pure function of its voice, its text piece and the piece's seed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def time_major_noise(key: Sequence[int], channels: int, steps: int) -> np.ndarray:
    """Standard normal float32 noise of shape [channels, steps] from a generator keyed by `key`.

    Drawn time-major (all channels of step 0, then step 1, ...): numpy's Generator fills
    an array in order, so the first t columns are the same for any `steps` >= t. A clip
    therefore does not depend on how much noise was drawn past its own length: not on a
    padded batch's longest text, nor on an estimate that had to be retried larger.
    """
    rng = np.random.default_rng([int(k) for k in key])
    return rng.standard_normal((steps, channels), dtype=np.float32).T
