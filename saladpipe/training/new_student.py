"""A stage-I student before training: audio encoder, adapter, and a copy of the teacher's LM.

Two kinds of ears (the recipe's `encoder`):
- a pretrained Whisper encoder (the paper's students start from one), frozen, with its
  position embeddings cut to the recipe's window so a short clip costs a short window;
- a Whisper-style encoder with random weights, learnt in stage I from the distillation
  loss alone (the comparison: what the pretrained encoder is worth).
Either way the student is a Hugging Face WhisperModel (of which it uses the encoder),
so it saves and loads through the ordinary student folder format.
"""

from __future__ import annotations

import copy
from pathlib import Path

from transformers import (
    PreTrainedModel,
    PreTrainedTokenizerBase,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
    WhisperModel,
)

from saladpipe.assets.whisper_window import cut_positions, window_features, window_positions
from saladpipe.data_schemas.config import is_builtin
from saladpipe.models.configs import whisper_encoder_config
from saladpipe.models.speech_lm import AdapterConfig, FrameStackAdapter, SpeechAdaptedLM
from saladpipe.training.optim import seeded
from saladpipe.training.recipe import EncoderRecipe, PretrainedEncoderRecipe
from saladpipe.training.speech import SAMPLE_RATE

# Whisper's log-mel front end: 10 ms hops, two mel frames per encoder frame.
WHISPER_HOP = 160
WHISPER_N_FFT = 400


def new_student(
    teacher_lm: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    recipe: PretrainedEncoderRecipe | EncoderRecipe,
    seed: int,
) -> SpeechAdaptedLM:
    """An untrained adapter (and, from scratch, encoder) around a copy of the teacher's LM."""
    if isinstance(recipe, PretrainedEncoderRecipe):
        encoder, features = pretrained_encoder(encoder_folder(recipe.source), recipe.window_s)
    else:
        encoder, features = scratch_encoder(recipe, seed)
    with seeded(seed):
        adapter = FrameStackAdapter(
            AdapterConfig(
                stride=recipe.adapter_stride,
                input_size=int(encoder.config.d_model),
                hidden_size=recipe.adapter_hidden,
                output_size=int(teacher_lm.config.get_text_config().hidden_size),
            )
        )
    lm = copy.deepcopy(teacher_lm).eval()
    return SpeechAdaptedLM(encoder, features, adapter, lm, tokenizer)


def encoder_folder(source: str) -> Path:
    """A Whisper checkpoint folder: `builtin:whisper-*` (converted once) or a local path."""
    if is_builtin(source):
        from saladpipe.assets.whisper import resolve_whisper_source

        return resolve_whisper_source(source)
    return Path(source)


def pretrained_encoder(folder: Path, window_s: int) -> tuple[WhisperModel, WhisperFeatureExtractor]:
    """The checkpoint's encoder with positions for `window_s` seconds, and its front end.

    Whisper was trained on 30 s windows; the first positions of its table still place
    a short clip's frames (a 6 s clip stays within cosine 0.99 of its full-window
    output). The decoder is never run, so the smallest one the config allows is kept.
    """
    full = WhisperForConditionalGeneration.from_pretrained(
        folder, use_safetensors=True, local_files_only=True, trust_remote_code=False
    )
    source = full.config
    positions = window_positions(window_s, SAMPLE_RATE, WHISPER_HOP, source.max_source_positions)
    config = whisper_encoder_config(
        width=source.d_model,
        layers=source.encoder_layers,
        heads=source.encoder_attention_heads,
        ffn=source.encoder_ffn_dim,
        mel_bins=source.num_mel_bins,
        source_positions=positions,
    )
    model = WhisperModel(config)
    state = full.model.encoder.state_dict()
    cut_positions(state, "embed_positions.weight", positions)
    model.encoder.load_state_dict(state)
    features = window_features(
        source.num_mel_bins, SAMPLE_RATE, WHISPER_HOP, WHISPER_N_FFT, window_s
    )
    return model.eval(), features


def scratch_encoder(
    recipe: EncoderRecipe, seed: int
) -> tuple[WhisperModel, WhisperFeatureExtractor]:
    """A Whisper-style encoder with random weights, and a front end of the recipe's rate."""
    mel_frames = recipe.window_s * SAMPLE_RATE // recipe.hop_length
    features = WhisperFeatureExtractor(
        feature_size=recipe.mel_bins,
        sampling_rate=SAMPLE_RATE,
        n_fft=recipe.n_fft,
        hop_length=recipe.hop_length,
        chunk_length=recipe.window_s,
    )
    config = whisper_encoder_config(
        width=recipe.hidden,
        layers=recipe.layers,
        heads=recipe.heads,
        ffn=2 * recipe.hidden,
        mel_bins=recipe.mel_bins,
        source_positions=mel_frames // 2,
    )
    with seeded(seed):
        encoder = WhisperModel(config)
    return encoder, features
