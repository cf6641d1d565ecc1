"""Kokoro-82M for real: the builtin model joined from its PyPI parts and checked, English
speech that Whisper hears back, voices and blends, speed, a model folder of one's own,
and the worker-process path a run takes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from saladpipe.assets.cache import RECORD_FILE
from saladpipe.assets.kokoro import LICENCE, MODEL_FILE, VOICES_FILE, ensure_kokoro, join_parts
from saladpipe.data_schemas.config import AsrCheck, TTSSection, VoiceSpec
from saladpipe.data_schemas.errors import ConfigError
from saladpipe.tts import EngineOptions
from saladpipe.tts.kokoro import SAMPLE_RATE, KokoroEngine, parse_blend
from saladpipe.tts.registry import create_engine, describe_voice
from saladpipe.tts.service import SpeechService, SpokenText

PUBLISHED_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"
TEXT = "The capital of France is Paris."


@pytest.fixture(scope="module")
def kumo() -> KokoroEngine:
    engine = create_engine(VoiceSpec(engine="kokoro", speaker="jm_kumo"))
    assert isinstance(engine, KokoroEngine)
    return engine


def test_the_builtin_model_is_joined_once_checked_and_its_licence_recorded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import json

    from saladpipe.assets.cache import sha256_file

    files = ensure_kokoro(tmp_path)
    assert sha256_file(files.model) == PUBLISHED_SHA256
    record = json.loads((files.model.parent / RECORD_FILE).read_text())
    assert record["licence"] == LICENCE
    assert {"LICENSE", "NOTICE"} <= {p.name for p in files.model.parent.iterdir()}
    before = files.model.stat().st_mtime_ns
    assert ensure_kokoro(tmp_path) == files and files.model.stat().st_mtime_ns == before
    with files.model.open("r+b") as fh:
        fh.truncate(1000)
    assert sha256_file(ensure_kokoro(tmp_path).model) == PUBLISHED_SHA256
    assert "is damaged" in caplog.text


def test_parts_that_do_not_join_to_the_published_sum_are_refused(tmp_path: Path) -> None:
    part = tmp_path / "part.bin"
    part.write_bytes(b"not the model")
    with pytest.raises(ConfigError, match="is not the published"):
        join_parts((part,), PUBLISHED_SHA256, tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists()


def test_english_speech_comes_out_the_same_every_time(kumo: KokoroEngine) -> None:
    assert kumo.sample_rate == SAMPLE_RATE == 24000
    first = kumo.synthesize(TEXT, seed=0)
    assert first.dtype == np.float32 and 1.5 < first.size / SAMPLE_RATE < 5.0
    assert np.abs(first).max() > 0.05
    np.testing.assert_array_equal(first, kumo.synthesize(TEXT, seed=7))
    assert kumo.voice.name == "kokoro-82m:jm_kumo" and kumo.voice.deterministic


def test_speed_shortens_the_clip(kumo: KokoroEngine) -> None:
    faster = create_engine(
        VoiceSpec(engine="kokoro", speaker="jm_kumo"),
        EngineOptions(own=KokoroEngine.Options(speed=1.5)),
    )
    ratio = faster.synthesize(TEXT, 0).size / kumo.synthesize(TEXT, 0).size
    assert ratio == pytest.approx(1 / 1.5, rel=0.15)


def test_a_blend_is_the_weighted_sum_of_its_voices(kumo: KokoroEngine) -> None:
    assert parse_blend("jm_kumo:3+jf_alpha:1") == [("jm_kumo", 0.75), ("jf_alpha", 0.25)]
    mixed = create_engine(VoiceSpec(engine="kokoro", speaker="jm_kumo:0.5+jf_alpha:0.5"))
    alpha = create_engine(VoiceSpec(engine="kokoro", speaker="jf_alpha"))
    assert isinstance(mixed, KokoroEngine) and isinstance(alpha, KokoroEngine)
    np.testing.assert_allclose(mixed._style, (kumo._style + alpha._style) / 2, atol=1e-6)
    clips = [e.synthesize(TEXT, 0) for e in (kumo, alpha, mixed)]
    assert clips[2].size not in (clips[0].size, clips[1].size) or not np.array_equal(
        clips[2], clips[0]
    )
    assert mixed.voice.name == "kokoro-82m:jm_kumo:0.5+jf_alpha:0.5"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (VoiceSpec(engine="kokoro", speaker="af_heart"), "has no Kokoro voice af_heart"),
        (VoiceSpec(engine="kokoro", speaker="jm_kumo:-1"), "positive weights"),
        (VoiceSpec(engine="kokoro", voice="builtin:kokoro-9b"), "unknown builtin Kokoro model"),
        (VoiceSpec(engine="kokoro", voice="/nowhere/kokoro.onnx"), "Kokoro model not found"),
    ],
)
def test_a_bad_voice_is_a_config_error_naming_it(spec: VoiceSpec, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        describe_voice(spec)


def test_a_model_folder_of_ones_own_loads_with_its_voices_file(
    kumo: KokoroEngine, tmp_path: Path
) -> None:
    """As a user brings the published kokoro-v1.0.onnx and voices-v1.0.bin."""
    builtin = ensure_kokoro()
    shutil.copyfile(builtin.model, tmp_path / "kokoro-v1.0.onnx")
    shutil.copyfile(builtin.voices, tmp_path / "voices-v1.0.bin")
    (tmp_path / "LICENSE").write_text("Apache License\nVersion 2.0, January 2004\n")
    spec = VoiceSpec(engine="kokoro", voice=str(tmp_path), speaker="jm_kumo")
    info = describe_voice(spec)
    assert (info.name, info.license) == ("kokoro-v1.0:jm_kumo", "Apache-2.0")
    own = create_engine(spec)
    np.testing.assert_array_equal(own.synthesize(TEXT, 0), kumo.synthesize(TEXT, 0))
    (tmp_path / "voices-v1.0.bin").unlink()
    with pytest.raises(ConfigError, match="no Kokoro voices file"):
        describe_voice(spec)
    assert MODEL_FILE != "kokoro-v1.0.onnx" and VOICES_FILE != "voices-v1.0.bin"


def test_a_run_s_workers_speak_english_that_whisper_hears_back() -> None:
    texts = [
        ("k0", TEXT),
        ("k1", "A small dog ran across the green field."),
        ("k2", "Water boils at one hundred degrees."),
    ]
    tts = TTSSection(
        engine="kokoro",
        voices=(VoiceSpec(engine="kokoro", speaker="jm_kumo"),),
        workers=1,
        asr=AsrCheck(model="builtin:whisper-tiny-en"),
    )
    with SpeechService(tts, "flac", seed=0) as service:
        spoken = service.speak(texts)
    assert all(isinstance(s, SpokenText) for s in spoken), spoken
    clips = [s for s in spoken if isinstance(s, SpokenText)]
    assert {(c.engine, c.voice, c.license) for c in clips} == {
        ("kokoro", "kokoro-82m:jm_kumo", "Apache-2.0")
    }
    assert all(c.asr_cer is not None and c.asr_cer <= 0.3 for c in clips), [
        c.asr_cer for c in clips
    ]
