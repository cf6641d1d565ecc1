"""The interface every student kind offers the scorer.

A student hears the spoken prefix and reads the continuation's tokens; it can also
read the prefix as text (for the forgetting score). Kinds: the project's own
speech-adapted LM (`speech_lm.py`) and Qwen2-Audio checkpoints (`qwen2_audio.py`).
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from saladpipe.models.text_lm import TextLM


class Student(nn.Module, metaclass=ABCMeta):
    """A speech-reading LM; `model_id` names its weights in score tables (set by loaders)."""

    tokenizer: PreTrainedTokenizerBase
    model_id: str

    @property
    @abstractmethod
    def sampling_rate(self) -> int:
        """The rate audio must have, from the feature extractor."""

    @property
    @abstractmethod
    def max_audio_samples(self) -> int | None:
        """Longest clip the audio encoder takes in full; None when unbounded."""

    @property
    @abstractmethod
    def text_lm(self) -> TextLM:
        """The student's LM reading text: the forgetting pass and the LM head."""

    @abstractmethod
    def audio_positions(self, num_samples: int) -> int:
        """Context positions a clip of `num_samples` samples takes; 0 when too short to encode."""

    @abstractmethod
    def speech_hidden(
        self, audio: Sequence[np.ndarray], continuation_ids: Sequence[Sequence[int]]
    ) -> torch.Tensor:
        """Hidden states predicting each continuation token after the spoken prefix.

        Row j of sample i (samples concatenated in order) predicts continuation
        token j; clips are float32 mono at `sampling_rate`.
        """

    @classmethod
    @abstractmethod
    def recognizes(cls, folder: Path) -> bool:
        """True when `folder` holds a checkpoint of this kind."""

    @classmethod
    @abstractmethod
    def from_pretrained(
        cls, folder: Path, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
    ) -> Student:
        """Load from a folder: safetensors only, no remote code, no network."""

    @property
    def device(self) -> torch.device:
        return self.text_lm.device

    def forward(
        self, audio: Sequence[np.ndarray], continuation_ids: Sequence[Sequence[int]]
    ) -> torch.Tensor:
        """Logits predicting each continuation token from the spoken prefix (rows as above)."""
        return self.text_lm.logits(self.speech_hidden(audio, continuation_ids))
