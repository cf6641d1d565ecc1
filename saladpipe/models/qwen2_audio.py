"""Qwen2-Audio checkpoints as students: a released audio-LLM that transformers loads natively.

The student reads `<|audio_bos|> <|AUDIO|> x n <|audio_eos|>` followed by the
continuation's tokens, as Qwen2-Audio's processor lays out audio, with n the
number of audio embeddings the encoder gives the clip; the model's own forward
pass puts the audio embeddings in place of the `<|AUDIO|>` tokens. Every clip is
padded to the feature extractor's fixed window (30 s in released checkpoints) and
masked past its length, so a clip's embeddings do not depend on its batch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import (
    AutoFeatureExtractor,
    AutoTokenizer,
    PreTrainedTokenizerBase,
    Qwen2AudioForConditionalGeneration,
)

from saladpipe.data_schemas.errors import SaladpipeError
from saladpipe.models.student import Student
from saladpipe.models.text_lm import TextLM, gather_index, right_pad

MODEL_TYPE = "qwen2_audio"
AUDIO_BOS = "<|audio_bos|>"
AUDIO_EOS = "<|audio_eos|>"


class Qwen2AudioStudent(Student):
    """A `Qwen2AudioForConditionalGeneration` with its Whisper feature extractor and tokenizer."""

    def __init__(
        self,
        model: Qwen2AudioForConditionalGeneration,
        feature_extractor: Any,
        tokenizer: PreTrainedTokenizerBase,
        model_id: str = "unsaved-student",
    ) -> None:
        super().__init__()
        vocab = tokenizer.get_vocab()
        missing = [t for t in (AUDIO_BOS, AUDIO_EOS) if t not in vocab]
        if missing:
            raise SaladpipeError(f"Qwen2-Audio tokenizer lacks the audio markers {missing}")
        self.model = model
        # Any: transformers feature extractors define __call__ and their fields per subclass.
        self.feature_extractor: Any = feature_extractor
        self.tokenizer = tokenizer
        self.model_id = model_id
        self._bos, self._eos = vocab[AUDIO_BOS], vocab[AUDIO_EOS]
        self._audio = int(model.config.audio_token_id)
        pad = tokenizer.pad_token_id
        self._pad = self._eos if pad is None else int(pad)
        self._text_lm = TextLM(model, body=model.model.language_model, head=model.lm_head)

    @property
    def sampling_rate(self) -> int:
        return int(self.feature_extractor.sampling_rate)

    @property
    def max_audio_samples(self) -> int:
        return int(self.feature_extractor.n_samples)

    @property
    def text_lm(self) -> TextLM:
        return self._text_lm

    def audio_tokens(self, num_samples: int) -> int:
        """Audio embeddings of a clip: the encoder's own length rule on its mel frames."""
        if num_samples <= 0:
            return 0
        frames = math.ceil(
            min(num_samples, self.max_audio_samples) / self.feature_extractor.hop_length
        )
        tower = self.model.model.audio_tower
        _, tokens = tower._get_feat_extract_output_lengths(torch.tensor(frames))
        return max(int(tokens), 0)

    def audio_positions(self, num_samples: int) -> int:
        tokens = self.audio_tokens(num_samples)
        return tokens + 2 if tokens > 0 else 0

    def speech_hidden(
        self, audio: Sequence[np.ndarray], continuation_ids: Sequence[Sequence[int]]
    ) -> torch.Tensor:
        tokens = [self.audio_tokens(len(clip)) for clip in audio]
        if min(tokens) <= 0:
            raise ValueError("a clip is too short to give any audio embedding")
        features = self.feature_extractor(
            list(audio),
            sampling_rate=self.sampling_rate,
            return_attention_mask=True,
            return_tensors="pt",
        )
        rows = [
            [self._bos, *([self._audio] * n), self._eos, *ids]
            for n, ids in zip(tokens, continuation_ids, strict=True)
        ]
        ids, mask = right_pad(rows, self._pad)
        index = gather_index(
            [n + 1 for n in tokens], [len(c) for c in continuation_ids], ids.shape[1]
        )
        device = self.device
        dtype = self.model.model.audio_tower.conv1.weight.dtype
        out = self.model.model(
            input_ids=torch.from_numpy(ids).to(device),
            attention_mask=torch.from_numpy(mask).to(device),
            input_features=features["input_features"].to(device, dtype),
            feature_attention_mask=features["attention_mask"].to(device),
            use_cache=False,
        )
        states: torch.Tensor = out.last_hidden_state
        return states.flatten(0, 1).index_select(0, torch.from_numpy(index).to(device))

    @classmethod
    def recognizes(cls, folder: Path) -> bool:
        config = folder / "config.json"
        if not config.is_file():
            return False
        try:
            return bool(
                json.loads(config.read_text(encoding="utf-8")).get("model_type") == MODEL_TYPE
            )
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return False

    @classmethod
    def from_pretrained(
        cls, folder: Path, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
    ) -> Qwen2AudioStudent:
        safe: dict[str, Any] = {"trust_remote_code": False, "local_files_only": True}
        try:
            model = Qwen2AudioForConditionalGeneration.from_pretrained(
                folder, dtype=dtype, use_safetensors=True, **safe
            )
            feature_extractor = AutoFeatureExtractor.from_pretrained(folder, **safe)
            tokenizer = AutoTokenizer.from_pretrained(folder, **safe)
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SaladpipeError(
                f"cannot load Qwen2-Audio student from {folder}: {first}"
            ) from None
        student = cls(model, feature_extractor, tokenizer)
        return student.to(device).eval().requires_grad_(False)

    def save_pretrained(self, folder: Path) -> None:
        """A Hugging Face folder (config, safetensors, feature extractor, tokenizer)."""
        self.model.save_pretrained(folder)
        self.feature_extractor.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)
