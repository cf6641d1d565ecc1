"""Piper speaks real English; clips are resampled, encoded and checked; failures are quarantined."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from saladpipe.data_schemas.config import OutputSection, TTSSection
from saladpipe.data_schemas.errors import ConfigError
from saladpipe.pipeline.synthesize import synthesize_output_shard, synthesize_texts
from saladpipe.tts import ClipLimits, TTSEngine, VoiceInfo, check_clip, create_engine
from saladpipe.tts.audio import decode, encode, resample
from saladpipe.tts.checks import rms_dbfs

TEXT = "The quick brown fox jumps over the lazy dog near the river bank."


@pytest.fixture(scope="module")
def piper() -> TTSEngine:
    return create_engine("piper", "builtin:joe-us")


def test_piper_speaks_real_speech(piper: TTSEngine) -> None:
    samples = piper.synthesize(TEXT)
    assert piper.sample_rate == 22050
    assert piper.voice.license == "CC0" and piper.voice.language == "en_US"
    seconds = samples.size / piper.sample_rate
    assert len(TEXT) / 25 < seconds < len(TEXT) / 8
    assert rms_dbfs(samples) > -30
    assert check_clip(samples, piper.sample_rate, TEXT, ClipLimits()) is None


def test_resample_keeps_duration_and_a_tone(tmp_path: Path) -> None:
    rate = 22050
    t = np.arange(rate) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    out = resample(tone, rate, 16000)
    assert out.size == 16000
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(int(np.argmax(spectrum)) - 440) <= 1
    decoded, decoded_rate = decode(encode(out, 16000, "flac"))
    assert decoded_rate == 16000
    np.testing.assert_allclose(decoded, out, atol=1 / 32768 * 2)


@pytest.mark.parametrize(
    ("samples", "text", "reason"),
    [
        (np.zeros(0, np.float32), "hello there", "empty_audio"),
        (np.full(16000, np.nan, np.float32), "hello there", "non_finite_samples"),
        (np.zeros(16000 * 3, np.float32), "hello there friend", "silent"),
        (np.full(1600, 0.3, np.float32), "a long sentence " * 10, "too_short"),
        (np.full(16000 * 30, 0.3, np.float32), "hi", "too_long"),
        (np.tile(np.float32([1.0, -1.0]), 16000), "hello there friend", "clipped"),
    ],
)
def test_clip_checks_name_the_problem(samples: np.ndarray, text: str, reason: str) -> None:
    result = check_clip(samples, 16000, text, ClipLimits())
    assert result is not None and result.startswith(reason)


class _FailingEngine(TTSEngine):
    """Wraps a real engine and fails on texts containing a marker word."""

    name = "failing"

    def __init__(self, inner: TTSEngine) -> None:
        self.inner = inner

    @property
    def sample_rate(self) -> int:
        return self.inner.sample_rate

    @property
    def voice(self) -> VoiceInfo:
        return self.inner.voice

    def synthesize(self, text: str) -> np.ndarray:
        if "FAIL" in text:
            raise RuntimeError("engine crashed")
        if "SILENT" in text:
            return np.zeros(self.sample_rate * 2, np.float32)
        return self.inner.synthesize(text)


def test_failures_go_to_quarantine_and_the_rest_to_the_shard(
    piper: TTSEngine, tmp_path: Path
) -> None:
    texts = [
        "A first good sentence to speak.",
        "This one will FAIL now.",
        "SILENT text here.",
        "A second good sentence to speak.",
    ]
    selection = pa.table(
        {
            "text_id": [f"t{i}" for i in range(4)],
            "text": texts,
            "domain": ["d"] * 4,
            "cluster": pa.array([0, 1, 0, 1], pa.int32()),
            "cluster_gap": [0.5, 0.7, 0.5, 0.7],
            "gap_score": [0.5, 0.7, 0.5, 0.7],
            "selection_round": pa.array([0] * 4, pa.int32()),
            "strategy": ["salad"] * 4,
            "probability": [0.1] * 4,
            "rank": list(range(4)),
        }
    )
    out, quarantine = tmp_path / "part.parquet", tmp_path / "q.parquet"
    result = synthesize_output_shard(
        selection, out, quarantine, _FailingEngine(piper), TTSSection(), OutputSection()
    )
    shard = pq.read_table(out)
    assert shard.column("text_id").to_pylist() == ["t0", "t3"]
    assert shard.column("rank").to_pylist() == [0, 3]
    assert set(shard.column("sampling_rate").to_pylist()) == {16000}
    rejected = pq.read_table(quarantine)
    assert dict(
        zip(
            rejected.column("text_id").to_pylist(),
            rejected.column("reason").to_pylist(),
            strict=True,
        )
    ) == {"t1": "tts_error", "t2": "silent"}
    assert "engine crashed" in rejected.column("detail")[0].as_py()
    assert result.audio_seconds == pytest.approx(
        sum(shard.column("duration_s").to_pylist()), rel=1e-6
    )


def test_synthesize_texts_resamples_to_the_configured_rate(piper: TTSEngine) -> None:
    result = synthesize_texts([("a", TEXT)], piper, TTSSection(sample_rate=24000), "wav", "test")
    samples, rate = decode(result.clips[0].audio_bytes)
    assert rate == 24000 and abs(samples.size / 24000 - result.clips[0].duration_s) < 1e-3


def test_unknown_engine_and_voice_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown engine"):
        create_engine("festival", "x")
    with pytest.raises(ConfigError, match="Piper voice not found"):
        create_engine("piper", str(tmp_path / "missing.onnx"))
    with pytest.raises(ConfigError, match="unknown builtin Piper voice"):
        create_engine("piper", "builtin:nobody")
