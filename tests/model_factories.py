"""Small models and inputs for the model and scoring tests, built from configs (no network)."""

from __future__ import annotations

import shutil
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pytest
import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    Qwen2AudioConfig,
    Qwen2AudioForConditionalGeneration,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2Model,
    WhisperFeatureExtractor,
    WhisperModel,
)

from saladpipe.data_schemas.config import ModelSpec
from saladpipe.models import (
    AdapterConfig,
    FrameStackAdapter,
    Qwen2AudioStudent,
    SpeechAdaptedLM,
    Teacher,
    ensure_placeholder_models,
    load_student,
    load_teacher,
)
from saladpipe.models.configs import wav2vec2_config, whisper_encoder_config

TEXTS = [
    f"Sentence {i} is about {topic} and the words that usually follow {topic} in a text."
    for i, topic in enumerate(["rivers", "music", "algebra", "cooking", "trains", "stars"] * 20)
]
# Another corpus: its tokenizer gets a different vocabulary.
OTHER_TEXTS = [f"Zygomorphic quokkas juxtapose {i} xylophones." for i in range(100)]


def placeholder_dirs(cache_dir: Path, seed: int = 0, texts: list[str] = TEXTS) -> dict[str, Path]:
    return ensure_placeholder_models(cache_dir, texts, seed)


def load_pair(dirs: dict[str, Path]) -> tuple[Teacher, SpeechAdaptedLM]:
    """Teacher and student of a placeholder build, on CPU in float32."""
    teacher = load_teacher(ModelSpec(source="builtin:placeholder-teacher"), "cpu", "float32", dirs)
    student = load_student(ModelSpec(source="builtin:placeholder-student"), "cpu", "float32", dirs)
    assert isinstance(student, SpeechAdaptedLM)  # the placeholder student is one
    return teacher, student


def noise(seconds: float, rate: int = 16000, seed: int = 0) -> np.ndarray:
    """Quiet white noise as float32 mono, a stand-in for speech."""
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal(round(seconds * rate))).astype(np.float32)


def whisper_student(lm_dir: Path, seed: int = 0) -> SpeechAdaptedLM:
    """A tiny Whisper-encoder student (2 s window) around the LM and tokenizer in `lm_dir`."""
    torch.manual_seed(seed)
    config = whisper_encoder_config(
        width=64, layers=2, heads=2, ffn=128, mel_bins=80, source_positions=100, dropout=0.1
    )
    encoder = WhisperModel(config).eval()
    feature_extractor = WhisperFeatureExtractor(
        feature_size=80, sampling_rate=16000, chunk_length=2
    )
    lm = AutoModelForCausalLM.from_pretrained(lm_dir, local_files_only=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(lm_dir, local_files_only=True)
    adapter = FrameStackAdapter(
        AdapterConfig(stride=2, input_size=64, hidden_size=96, output_size=64)
    )
    return SpeechAdaptedLM(encoder, feature_extractor, adapter, lm, tokenizer).eval()


def group_norm_student(student: SpeechAdaptedLM, seed: int = 0) -> SpeechAdaptedLM:
    """`student` with a wav2vec2-base-style encoder whose group norm spans padding too."""
    torch.manual_seed(seed)
    config = wav2vec2_config(group_norm=True)
    feature_extractor = Wav2Vec2FeatureExtractor(sampling_rate=16000, return_attention_mask=False)
    encoder = Wav2Vec2Model(config).eval()
    return SpeechAdaptedLM(
        encoder, feature_extractor, student.adapter, student.lm, student.tokenizer
    )


def fake_hub_snapshot(hf_home: Path, repo_id: str, source: Path, commit: str) -> Path:
    """Lay `source` out as a cached hub snapshot (refs/main -> commit) under $HF_HOME/hub."""
    repo_dir = hf_home / "hub" / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo_dir / "snapshots" / commit
    shutil.copytree(source, snapshot)
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(commit)
    return snapshot


def use_offline_hf_cache(monkeypatch: pytest.MonkeyPatch, hf_home: Path) -> None:
    """Point the Hugging Face cache at `hf_home`, offline.

    huggingface_hub reads HF_HOME/HF_HUB_CACHE/HF_HUB_OFFLINE once, at import, into
    `huggingface_hub.constants` (which transformers reads too), so the constants are
    patched along with the environment.
    """
    for name, value in (("HF_HOME", hf_home), ("HF_HUB_CACHE", hf_home / "hub")):
        monkeypatch.setenv(name, str(value))
        monkeypatch.setattr(huggingface_hub.constants, name, str(value))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def perturbed_student(student: SpeechAdaptedLM, scale: float = 0.02, seed: int = 0) -> None:
    """Add seeded noise to the student's LM in place, so it no longer equals the teacher."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in student.lm.parameters():
            param.add_(scale * torch.randn(param.shape, generator=gen, dtype=param.dtype))


def qwen2_audio_student(lm_dir: Path, seed: int = 0) -> Qwen2AudioStudent:
    """A tiny Qwen2-Audio (2 s window, 80 mel bins) whose tokenizer is the placeholder's
    plus Qwen2-Audio's three audio markers, appended after the teacher's vocabulary."""
    tokenizer = AutoTokenizer.from_pretrained(lm_dir, local_files_only=True)
    tokenizer.add_special_tokens(
        {"additional_special_tokens": ["<|audio_bos|>", "<|AUDIO|>", "<|audio_eos|>"]}
    )
    audio_token = tokenizer.convert_tokens_to_ids("<|AUDIO|>")
    assert isinstance(audio_token, int)  # one token in, one id out
    config = Qwen2AudioConfig(
        audio_config={
            "model_type": "qwen2_audio_encoder",
            "d_model": 64,
            "encoder_layers": 2,
            "encoder_attention_heads": 2,
            "encoder_ffn_dim": 128,
            "num_mel_bins": 80,
            "max_source_positions": 100,
        },
        text_config={
            "model_type": "qwen2",
            "hidden_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "intermediate_size": 128,
            "vocab_size": len(tokenizer),
            "max_position_embeddings": 512,
        },
        audio_token_index=audio_token,
    )
    torch.manual_seed(seed)
    model = Qwen2AudioForConditionalGeneration(config).eval()
    feature_extractor = WhisperFeatureExtractor(
        feature_size=80, sampling_rate=16000, chunk_length=2
    )
    return Qwen2AudioStudent(model, feature_extractor, tokenizer).eval()
