"""The student: a frozen audio encoder, a small trainable adapter and a causal LM.

The adapter stacks `stride` consecutive encoder frames and maps them with
Linear-GELU-Linear into the LM's embedding space, so the LM reads the spoken
prefix as `A` soft tokens followed by ordinary token embeddings. Every step pads
with masks such that a sample's output does not depend on what it is batched with.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import (
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor

from saladpipe.data_schemas.errors import SaladpipeError
from saladpipe.models.frame_memo import FrameMemo, weights_hash
from saladpipe.models.student import Student
from saladpipe.models.text_lm import TextLM, gather_index

FORMAT_NAME = "saladpipe-speech-adapted-lm"
FORMAT_VERSION = 1
MANIFEST_FILE = "saladpipe_student.json"
ADAPTER_FILE = "adapter.safetensors"
ENCODER_DIR = "audio_encoder"
LM_DIR = "lm"

EncoderKind = Literal["wav2vec2", "whisper"]


@dataclass(frozen=True)
class AdapterConfig:
    """Shape of the adapter; stored in the student manifest so loading can rebuild it."""

    stride: int
    input_size: int
    hidden_size: int
    output_size: int


class FrameStackAdapter(nn.Module):
    """Stacks `stride` consecutive frames, then Linear-GELU-Linear to the LM hidden size.

    Frames past a sample's true length are zeroed before stacking and the output
    length is ceil(frames / stride), so the last partial stack is the same whether
    or not the sample was padded in a batch.
    """

    def __init__(self, config: AdapterConfig) -> None:
        super().__init__()
        self.config = config
        self.proj = nn.Sequential(
            nn.Linear(config.stride * config.input_size, config.hidden_size),
            nn.GELU(),
            nn.Linear(config.hidden_size, config.output_size),
        )

    def output_length(self, frames: int) -> int:
        return math.ceil(frames / self.config.stride)

    def forward(
        self, frames: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """frames [B, T, D] with true lengths [B] -> embeds [B, ceil(T/k), H] and their lengths."""
        batch, steps, dim = frames.shape
        k = self.config.stride
        valid = torch.arange(steps, device=frames.device)[None, :] < lengths[:, None]
        frames = frames.masked_fill(~valid[..., None], 0.0)
        extra = (-steps) % k
        frames = nn.functional.pad(frames, (0, 0, 0, extra))
        stacked = frames.reshape(batch, (steps + extra) // k, k * dim)
        out_lengths = torch.div(lengths + k - 1, k, rounding_mode="floor")
        out = self.proj(stacked)
        out_valid = torch.arange(out.shape[1], device=out.device)[None, :] < out_lengths[:, None]
        return out.masked_fill(~out_valid[..., None], 0.0), out_lengths


def encoder_kind(encoder: PreTrainedModel) -> EncoderKind:
    """Which input convention the encoder follows; anything else is refused up front."""
    if encoder.config.model_type == "whisper":
        return "whisper"
    if hasattr(encoder, "_get_feat_extract_output_lengths"):
        return "wav2vec2"
    raise SaladpipeError(
        f"unsupported audio encoder type {encoder.config.model_type!r}: "
        "expected Whisper or a wav2vec2-style encoder (raw waveform input)"
    )


def _encoder_output_size(encoder: PreTrainedModel) -> int:
    config = encoder.config
    return int(getattr(config, "output_hidden_size", None) or config.hidden_size)


def _load_error(what: str, path: Path, exc: Exception) -> SaladpipeError:
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return SaladpipeError(f"cannot load student {what} from {path}: {first_line}")


class SpeechAdaptedLM(Student):
    """Audio encoder (frozen) + frame-stacking adapter + causal LM, saved as one folder.

    `model_id` names the weights in score tables; loaders set it from the source.
    """

    def __init__(
        self,
        audio_encoder: PreTrainedModel,
        feature_extractor: SequenceFeatureExtractor,
        adapter: FrameStackAdapter,
        lm: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        model_id: str = "unsaved-student",
    ) -> None:
        super().__init__()
        self.encoder_kind = encoder_kind(audio_encoder)
        if adapter.config.input_size != _encoder_output_size(audio_encoder):
            raise SaladpipeError(
                f"adapter input size {adapter.config.input_size} does not match the audio "
                f"encoder's output size {_encoder_output_size(audio_encoder)}"
            )
        lm_size = lm.get_input_embeddings().embedding_dim
        if adapter.config.output_size != lm_size:
            raise SaladpipeError(
                f"adapter output size {adapter.config.output_size} does not match "
                f"the LM hidden size {lm_size}"
            )
        self.audio_encoder = audio_encoder.requires_grad_(False)
        # Any: transformers feature extractors define __call__ and their fields per subclass.
        self.feature_extractor: Any = feature_extractor
        self.adapter = adapter
        self.lm = lm
        self.tokenizer = tokenizer
        self.model_id = model_id
        self._text_lm = TextLM(lm)
        self.frame_memo: FrameMemo | None = None

    @property
    def sampling_rate(self) -> int:
        """The rate audio must have before `encode_audio`, from the feature extractor."""
        return int(self.feature_extractor.sampling_rate)

    @property
    def text_lm(self) -> TextLM:
        return self._text_lm

    @property
    def max_audio_samples(self) -> int | None:
        """Longest input the encoder sees in full (Whisper's window); None when unbounded."""
        if self.encoder_kind == "whisper":
            return int(self.feature_extractor.n_samples)
        return None

    def encoder_frames(self, num_samples: int) -> int:
        """Encoder frames that carry a clip of `num_samples` samples (padding excluded)."""
        if num_samples <= 0:
            return 0
        if self.encoder_kind == "whisper":
            fe = self.feature_extractor
            mel_frames = min(math.ceil(num_samples / fe.hop_length), fe.nb_max_frames)
            # conv2 has stride 2; the encoder output is capped at its positions.
            limit = int(self.audio_encoder.config.max_source_positions)
            return min(math.ceil(mel_frames / 2), limit)
        output_lengths = cast(
            Callable[[int], torch.Tensor], self.audio_encoder._get_feat_extract_output_lengths
        )
        return max(int(output_lengths(num_samples)), 0)

    def audio_embed_length(self, num_samples: int) -> int:
        """A: how many adapter outputs (soft tokens) a clip of `num_samples` samples becomes."""
        return self.adapter.output_length(self.encoder_frames(num_samples))

    def audio_positions(self, num_samples: int) -> int:
        """The spoken prefix is its A soft tokens, nothing around them."""
        return self.audio_embed_length(num_samples)

    @classmethod
    def recognizes(cls, folder: Path) -> bool:
        return (folder / MANIFEST_FILE).is_file()

    def _encoder_frames_batch(self, audio: Sequence[np.ndarray]) -> torch.Tensor:
        """Encoder outputs [B, T, D]; positions past a clip's true length are undefined."""
        fe = self.feature_extractor
        encoder_dtype = next(self.audio_encoder.parameters()).dtype
        if self.encoder_kind == "whisper":
            # Whisper pads every clip to its fixed window and has no attention mask,
            # so batching cannot change a clip's frames.
            features = fe(list(audio), sampling_rate=self.sampling_rate, return_tensors="pt")
            inputs = features["input_features"].to(self.device, encoder_dtype)
            return self.audio_encoder.get_encoder()(input_features=inputs).last_hidden_state
        if getattr(self.audio_encoder.config, "feat_extract_norm", "layer") == "group":
            # Group norm mixes all time steps, padding included: encode clips one by one.
            outs = [self._wav2vec2_frames([clip], encoder_dtype)[0] for clip in audio]
            return nn.utils.rnn.pad_sequence(outs, batch_first=True)
        return self._wav2vec2_frames(audio, encoder_dtype)

    def _wav2vec2_frames(self, audio: Sequence[np.ndarray], dtype: torch.dtype) -> torch.Tensor:
        features = self.feature_extractor(
            list(audio),
            sampling_rate=self.sampling_rate,
            padding=True,
            return_attention_mask=True,
            return_tensors="pt",
        )
        out = self.audio_encoder(
            input_values=features["input_values"].to(self.device, dtype),
            attention_mask=features["attention_mask"].to(self.device),
        )
        return out.last_hidden_state

    def encode_audio(self, audio: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """float32 mono clips at `sampling_rate` -> adapter outputs [B, A_max, H], lengths [B]."""
        return self.adapt_frames(self.clip_frames(audio))

    def clip_frames(self, audio: Sequence[np.ndarray]) -> list[torch.Tensor]:
        """Each clip's encoder frames [T_i, D], cut to its true length (views into the
        batch's output: a caller that keeps them, as training on a frozen encoder does,
        clones them). With a frame memo, clips it holds are not encoded again, unless
        the encoder is being trained."""
        if self.frame_memo is not None and not self.encoder_is_training:
            return self.frame_memo.frames(audio, self._encode_clips)
        return self._encode_clips(audio)

    def _encode_clips(self, audio: Sequence[np.ndarray]) -> list[torch.Tensor]:
        frames = self._encoder_frames_batch(audio)
        return [frames[i, : self.encoder_frames(len(clip))] for i, clip in enumerate(audio)]

    @property
    def encoder_is_training(self) -> bool:
        return any(p.requires_grad for p in self.audio_encoder.parameters())

    @property
    def _frame_encoder(self) -> nn.Module:
        """The part of the audio encoder that makes frames (Whisper's decoder is unused)."""
        if self.encoder_kind == "whisper":
            return cast(nn.Module, self.audio_encoder.get_encoder())
        return self.audio_encoder

    def new_frame_memo(self) -> FrameMemo:
        """A memo for this student's encoder as its weights are now, given to it."""
        memo = FrameMemo(weights_hash(self._frame_encoder))
        self.frame_memo = memo
        return memo

    def use_frame_memo(self, memo: FrameMemo) -> None:
        """Share `memo` (made for another student): refused unless the encoders are equal."""
        memo.check(self._frame_encoder)
        self.frame_memo = memo

    def adapt_frames(self, frames: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Adapter outputs [B, A_max, H] and their lengths [B] from per-clip frames."""
        lengths = torch.tensor([len(f) for f in frames], device=self.device)
        padded = nn.utils.rnn.pad_sequence(list(frames), batch_first=True)
        adapter_dtype = next(self.adapter.parameters()).dtype
        return self.adapter(padded.to(self.device, adapter_dtype), lengths)

    def build_inputs(
        self,
        audio_embeds: torch.Tensor,
        audio_lengths: Sequence[int],
        continuation_ids: Sequence[Sequence[int]],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """[audio embeds of true length | continuation token embeds] per sample, right-padded.

        Returns inputs_embeds [B, L, H] and attention_mask [B, L]. The copy indices are
        built on the host, so this runs without a device synchronisation.
        """
        device = self.device
        counts = [len(ids) for ids in continuation_ids]
        totals = np.add(audio_lengths, counts)
        batch, width = len(counts), int(totals.max())
        token_embeds = self.lm.get_input_embeddings()(
            torch.tensor([t for ids in continuation_ids for t in ids], device=device)
        )
        inputs = token_embeds.new_zeros(batch * width, token_embeds.shape[-1])
        zeros = [0] * batch

        def index(starts: Sequence[int], lengths: Sequence[int], stride: int) -> torch.Tensor:
            return torch.from_numpy(gather_index(starts, lengths, stride)).to(device)

        audio_rows = audio_embeds.flatten(0, 1).index_select(
            0, index(zeros, audio_lengths, audio_embeds.shape[1])
        )
        inputs.index_copy_(0, index(zeros, audio_lengths, width), audio_rows.to(inputs.dtype))
        inputs.index_copy_(0, index(audio_lengths, counts, width), token_embeds)
        mask = torch.from_numpy((np.arange(width)[None, :] < totals[:, None]).astype(np.int64))
        return inputs.view(batch, width, -1), mask.to(device)

    def speech_hidden(
        self, audio: Sequence[np.ndarray], continuation_ids: Sequence[Sequence[int]]
    ) -> torch.Tensor:
        """The LM reads [A soft tokens | continuation]; token j is predicted at A - 1 + j."""
        lengths = [self.audio_embed_length(len(clip)) for clip in audio]
        if min(lengths) <= 0:
            raise ValueError("a clip is too short to give any audio embedding")
        embeds, _ = self.encode_audio(audio)
        return self.hidden_after_audio(embeds, lengths, continuation_ids)

    def hidden_after_audio(
        self,
        audio_embeds: torch.Tensor,
        audio_lengths: Sequence[int],
        continuation_ids: Sequence[Sequence[int]],
    ) -> torch.Tensor:
        """`speech_hidden` from clips already encoded (one encoding, many continuations)."""
        lengths = list(audio_lengths)
        inputs, mask = self.build_inputs(audio_embeds, lengths, continuation_ids)
        index = gather_index(
            [a - 1 for a in lengths], [len(ids) for ids in continuation_ids], inputs.shape[1]
        )
        return self.text_lm.hidden(
            mask, torch.from_numpy(index).to(self.device), inputs_embeds=inputs
        )

    def save_pretrained(self, path: Path) -> None:
        """Write the student folder: manifest, adapter, audio_encoder/ and lm/ (safetensors)."""
        path.mkdir(parents=True, exist_ok=True)
        self.audio_encoder.save_pretrained(path / ENCODER_DIR)
        self.feature_extractor.save_pretrained(path / ENCODER_DIR)
        self.lm.save_pretrained(path / LM_DIR)
        self.tokenizer.save_pretrained(path / LM_DIR)
        state = {k: v.detach().contiguous() for k, v in self.adapter.state_dict().items()}
        save_file(state, str(path / ADAPTER_FILE), metadata={"format": "pt"})
        manifest: dict[str, Any] = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "encoder_kind": self.encoder_kind,
            "adapter": asdict(self.adapter.config),
        }
        (path / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def from_pretrained(
        cls,
        path: Path,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> SpeechAdaptedLM:
        """Load a student folder: safetensors only, no remote code, no network."""
        manifest = _read_manifest(path)
        safe: dict[str, Any] = {
            "trust_remote_code": False,
            "local_files_only": True,
        }
        try:
            encoder = AutoModel.from_pretrained(
                path / ENCODER_DIR, dtype=dtype, use_safetensors=True, **safe
            )
            feature_extractor = AutoFeatureExtractor.from_pretrained(path / ENCODER_DIR, **safe)
        except (OSError, ValueError) as exc:
            raise _load_error("audio encoder", path, exc) from None
        try:
            lm = AutoModelForCausalLM.from_pretrained(
                path / LM_DIR, dtype=dtype, use_safetensors=True, **safe
            )
            tokenizer = AutoTokenizer.from_pretrained(path / LM_DIR, **safe)
        except (OSError, ValueError) as exc:
            raise _load_error("LM", path, exc) from None
        if encoder_kind(encoder) != manifest["encoder_kind"]:
            raise SaladpipeError(
                f"student {path}: manifest says encoder {manifest['encoder_kind']!r} "
                f"but audio_encoder/ holds {encoder_kind(encoder)!r}"
            )
        adapter = FrameStackAdapter(AdapterConfig(**manifest["adapter"]))
        try:
            adapter.load_state_dict(load_file(str(path / ADAPTER_FILE)))
        except (OSError, RuntimeError) as exc:
            raise _load_error("adapter", path, exc) from None
        student = cls(encoder, feature_extractor, adapter, lm, tokenizer)
        return student.to(device=device, dtype=dtype).eval()


def _read_manifest(path: Path) -> dict[str, Any]:
    """The manifest, checked for format and version before any weights are read."""
    file = path / MANIFEST_FILE
    if not file.is_file():
        raise SaladpipeError(f"not a saladpipe student folder (no {MANIFEST_FILE}): {path}")
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SaladpipeError(f"cannot read {file}: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise SaladpipeError(f"{file}: format is not {FORMAT_NAME!r}")
    if manifest.get("version") != FORMAT_VERSION:
        raise SaladpipeError(
            f"{file}: format version {manifest.get('version')!r} is not supported "
            f"(this saladpipe reads version {FORMAT_VERSION})"
        )
    adapter = manifest.get("adapter")
    fields = set(AdapterConfig.__dataclass_fields__)
    if not isinstance(adapter, dict) or set(adapter) != fields:
        raise SaladpipeError(f"{file}: adapter must have exactly the keys {sorted(fields)}")
    if manifest.get("encoder_kind") not in ("wav2vec2", "whisper"):
        raise SaladpipeError(f"{file}: unknown encoder_kind {manifest.get('encoder_kind')!r}")
    return manifest
