"""The configurations of the small models saladpipe builds itself, in one place.

The placeholder models, the trained builtin teacher and student, the scoring benchmark
and the tests all build GPT-2 language models, wav2vec2 encoders and Whisper encoders
from configs; each shape is named here once, so a model built for a test is built the
way the product builds it. A config's fields decide a model's initial weights, so a
builtin model's folder is the same for the same fields and seed.
"""

from __future__ import annotations

from typing import Any

from transformers import GPT2Config, Wav2Vec2Config, WhisperConfig


def gpt2_config(
    vocab_size: int,
    special_id: int,
    *,
    width: int,
    layers: int,
    heads: int,
    context: int,
    dropout: float | None = None,
    **extra: Any,
) -> GPT2Config:
    """A GPT-2 whose one special token is beginning, end and padding (as our BPE tokenizers
    have it); `dropout` None keeps GPT-2's own, 0.0 turns it off (small, clean data)."""
    if dropout is not None:
        extra |= dict.fromkeys(("resid_pdrop", "embd_pdrop", "attn_pdrop"), dropout)
    return GPT2Config(
        vocab_size=vocab_size,
        n_embd=width,
        n_layer=layers,
        n_head=heads,
        n_positions=context,
        bos_token_id=special_id,
        eos_token_id=special_id,
        pad_token_id=special_id,
        **extra,
    )


def wav2vec2_config(
    *,
    width: int = 64,
    layers: int = 2,
    heads: int = 2,
    ffn: int = 128,
    conv_channels: int = 32,
    group_norm: bool = False,
) -> Wav2Vec2Config:
    """A small wav2vec2 encoder with wav2vec2-base's 320x downsampling at 16 kHz. Layer norm
    (the default) masks padding; `group_norm` is wav2vec2-base's own, which spans padding
    too (a student must then be fed clips one by one)."""
    return Wav2Vec2Config(
        hidden_size=width,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=ffn,
        conv_dim=(conv_channels,) * 7,
        conv_stride=(5, 2, 2, 2, 2, 2, 2),
        conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        feat_extract_norm="group" if group_norm else "layer",
        do_stable_layer_norm=not group_norm,
        mask_time_prob=0.0,
    )


def whisper_encoder_config(
    *,
    width: int,
    layers: int,
    heads: int,
    ffn: int,
    mel_bins: int,
    source_positions: int,
    dropout: float = 0.0,
) -> WhisperConfig:
    """A Whisper-style encoder (`source_positions` = mel frames / 2) for a student; its
    decoder is never run, so it is the smallest the config allows."""
    return WhisperConfig(
        d_model=width,
        encoder_layers=layers,
        encoder_attention_heads=heads,
        encoder_ffn_dim=ffn,
        num_mel_bins=mel_bins,
        max_source_positions=source_positions,
        dropout=dropout,
        decoder_layers=1,
        decoder_attention_heads=1,
        decoder_ffn_dim=8,
        max_target_positions=4,
        vocab_size=4,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
        begin_suppress_tokens=None,
        suppress_tokens=None,
    )
