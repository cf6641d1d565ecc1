"""Encoder frames kept by clip, for students whose encoder is frozen.

An experiment fine-tunes many copies of one stage-I student and evaluates each on
the same clips. With the encoder frozen, every copy hears a clip exactly as the
others do, and the encoder is nearly all of an evaluation's cost: a memo shared by
the copies encodes each clip once. It is tied to the encoder's weights by their
hash, so a student with other weights cannot be given it, and a student whose
encoder is being trained does not consult it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn


def weights_hash(module: nn.Module) -> str:
    """sha256 over the module's state (names, dtypes, shapes and bytes)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{value.dtype}:{tuple(value.shape)}".encode())
        digest.update(value.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def clip_key(clip: np.ndarray) -> bytes:
    """A clip's identity: its dtype, length and samples."""
    data = np.ascontiguousarray(clip)
    digest = hashlib.blake2b(f"{data.dtype}:{data.shape}".encode(), digest_size=20)
    digest.update(data.tobytes())
    return digest.digest()


class FrameMemo:
    """Each clip's encoder frames [T, D], computed once for the encoder of `weights`.

    Copies of a student share the memo (`copy.deepcopy` returns it, not a copy): a
    copy has the same encoder weights, which `check` verifies when the memo is given.
    """

    def __init__(self, weights: str) -> None:
        self.weights = weights
        self._frames: dict[bytes, torch.Tensor] = {}
        self.hits = 0
        self.misses = 0

    def __deepcopy__(self, memo: dict[int, Any]) -> FrameMemo:
        return self

    def __len__(self) -> int:
        return len(self._frames)

    def check(self, encoder: nn.Module) -> None:
        """Refuse an encoder whose weights are not the ones the frames came from."""
        found = weights_hash(encoder)
        if found != self.weights:
            raise ValueError(
                f"frame memo: encoder weights {found[:12]} are not the memo's {self.weights[:12]}"
            )

    def frames(
        self,
        audio: Sequence[np.ndarray],
        encode: Callable[[Sequence[np.ndarray]], list[torch.Tensor]],
    ) -> list[torch.Tensor]:
        """Frames of every clip, encoding (in one batch) only the clips not seen before."""
        keys = [clip_key(clip) for clip in audio]
        missing: dict[bytes, int] = {}  # each new clip's first position in `audio`
        for i, key in enumerate(keys):
            if key not in self._frames:
                missing.setdefault(key, i)
        if missing:
            computed = encode([audio[i] for i in missing.values()])
            for key, frames in zip(missing, computed, strict=True):
                self._frames[key] = frames.clone()  # not a view holding the padded batch
        self.misses += len(missing)
        self.hits += len(keys) - len(missing)
        return [self._frames[k] for k in keys]
