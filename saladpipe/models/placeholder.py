"""Placeholder teacher and student with meaningless (random) weights.

They exist for the fast tests and for the thin default config, so the whole
pipeline runs on any machine without downloads. Their misalignment scores carry
no information about any real model. Both are built deterministically from the
seed and the corpus texts, and cached under a key of (format version, seed, texts).
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import (
    GPT2LMHeadModel,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2Model,
)

from saladpipe.models.bpe import SPECIAL_TOKEN, train_bpe_tokenizer
from saladpipe.models.configs import gpt2_config, wav2vec2_config
from saladpipe.models.speech_lm import AdapterConfig, FrameStackAdapter, SpeechAdaptedLM

PLACEHOLDER_FORMAT_VERSION = 1
TEACHER_NAME = "placeholder-teacher"
STUDENT_NAME = "placeholder-student"
VOCAB_SIZE = 2000
CONTEXT = 512
ADAPTER_STRIDE = 4


def _cache_key(texts: Sequence[str], seed: int) -> str:
    payload = json.dumps(
        {"format": PLACEHOLDER_FORMAT_VERSION, "seed": seed, "texts": list(texts)},
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def ensure_placeholder_models(cache_dir: Path, texts: Sequence[str], seed: int) -> dict[str, Path]:
    """Folders of the placeholder teacher and student, built once per (seed, texts).

    Built into a temporary folder and renamed into place, so a crash never leaves a
    half-built cache entry; a concurrent builder that loses the race discards its copy.
    """
    final = cache_dir / f"placeholders-{_cache_key(texts, seed)[:16]}"
    if not final.is_dir():
        cache_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".building-", dir=cache_dir))
        try:
            _build(staging, texts, seed)
            try:
                staging.rename(final)
            except OSError:
                if not final.is_dir():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return {TEACHER_NAME: final / TEACHER_NAME, STUDENT_NAME: final / STUDENT_NAME}


def _tiny_gpt2(vocab_size: int, special_id: int) -> GPT2LMHeadModel:
    config = gpt2_config(vocab_size, special_id, width=64, layers=2, heads=2, context=CONTEXT)
    return GPT2LMHeadModel(config).eval()


def _tiny_wav2vec2() -> tuple[Wav2Vec2Model, Wav2Vec2FeatureExtractor]:
    """320x downsampling at 16 kHz like wav2vec2-base; layer norm so padding is masked."""
    config = wav2vec2_config()
    feature_extractor = Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=16000,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=True,
    )
    return Wav2Vec2Model(config).eval(), feature_extractor


def _build(root: Path, texts: Sequence[str], seed: int) -> None:
    tokenizer = train_bpe_tokenizer(texts, VOCAB_SIZE, CONTEXT)
    special_id = tokenizer.get_vocab()[SPECIAL_TOKEN]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        lm = _tiny_gpt2(len(tokenizer), special_id)
        encoder, feature_extractor = _tiny_wav2vec2()
        adapter = FrameStackAdapter(
            AdapterConfig(
                stride=ADAPTER_STRIDE,
                input_size=encoder.config.hidden_size,
                hidden_size=4 * encoder.config.hidden_size,
                output_size=lm.config.n_embd,
            )
        )
    lm.save_pretrained(root / TEACHER_NAME)
    tokenizer.save_pretrained(root / TEACHER_NAME)
    student = SpeechAdaptedLM(encoder, feature_extractor, adapter, copy.deepcopy(lm), tokenizer)
    student.save_pretrained(root / STUDENT_NAME)
