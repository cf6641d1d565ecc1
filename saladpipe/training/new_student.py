"""The student: a Whisper-style audio encoder learnt from scratch, an adapter, the teacher's LM.

No pretrained speech encoder is available offline, so the encoder starts from random
weights and learns in stage I, from the distillation loss alone, to turn log-mel
features of Piper speech into soft tokens the LM can read. It is a Hugging Face
WhisperModel (of which the student uses the encoder) with a short window, so the
student saves and loads through the ordinary student folder format.
"""

from __future__ import annotations

import copy

from transformers import (
    PreTrainedModel,
    PreTrainedTokenizerBase,
    WhisperFeatureExtractor,
    WhisperModel,
)

from saladpipe.models.configs import whisper_encoder_config
from saladpipe.models.speech_lm import AdapterConfig, FrameStackAdapter, SpeechAdaptedLM
from saladpipe.training.optim import seeded
from saladpipe.training.recipe import EncoderRecipe
from saladpipe.training.speech import SAMPLE_RATE


def new_student(
    teacher_lm: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    recipe: EncoderRecipe,
    seed: int,
) -> SpeechAdaptedLM:
    """An untrained encoder and adapter around a copy of the teacher's LM."""
    mel_frames = recipe.window_s * SAMPLE_RATE // recipe.hop_length
    feature_extractor = WhisperFeatureExtractor(
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
        adapter = FrameStackAdapter(
            AdapterConfig(
                stride=recipe.adapter_stride,
                input_size=recipe.hidden,
                hidden_size=recipe.adapter_hidden,
                output_size=int(teacher_lm.config.get_text_config().hidden_size),
            )
        )
    lm = copy.deepcopy(teacher_lm).eval()
    return SpeechAdaptedLM(encoder, feature_extractor, adapter, lm, tokenizer)
