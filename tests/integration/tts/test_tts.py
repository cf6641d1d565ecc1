"""Piper speaks real English through worker processes; every clip is checked, resampled and
encoded; failures are retried, then quarantined, and the run goes on."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.config import ClipChecks, TTSSection, VoiceSpec
from saladpipe.data_schemas.io import read_table, write_table
from saladpipe.pipeline.synthesize import synthesize_output_shard, synthesize_probe_shard
from saladpipe.tts import EngineOptions, SpeechService, SpokenText, check_clip, create_engine
from saladpipe.tts.audio import decode, encode, resample
from saladpipe.tts.checks import rms_dbfs
from saladpipe.tts.render import RenderSettings, prepare
from tests.tts_factories import MARKS_ENV, MisbehavingEngine, growth_per_pass

TEXT = "The quick brown fox jumps over the lazy dog near the river bank."


def selection(texts: list[str]) -> pa.Table:
    n = len(texts)
    return pa.table(
        {
            "text_id": [f"t{i}" for i in range(n)],
            "text": texts,
            "domain": ["d"] * n,
            "cluster": pa.array([i % 2 for i in range(n)], pa.int32()),
            "cluster_gap": [0.5] * n,
            "gap_score": [0.5] * n,
            "selection_round": pa.array([0] * n, pa.int32()),
            "strategy": ["salad"] * n,
            "probability": [0.1] * n,
            "rank": list(range(n)),
        }
    )


@pytest.fixture(scope="module")
def piper_service() -> Iterator[SpeechService]:
    """Piper in two worker processes, each loading the voice once."""
    with SpeechService(TTSSection(workers=2), "flac", seed=0) as service:
        yield service


def test_piper_speaks_real_speech() -> None:
    piper = create_engine(VoiceSpec(engine="piper"), EngineOptions(threads=1))
    samples = piper.synthesize(TEXT, 0)
    assert piper.sample_rate == 22050 and piper.speakers() == []
    assert piper.voice.license == "CC0-1.0" and piper.voice.language == "en_US"
    seconds = samples.size / piper.sample_rate
    assert len(TEXT) / 25 < seconds < len(TEXT) / 8
    assert rms_dbfs(samples) > -30
    assert check_clip(samples, piper.sample_rate, TEXT, ClipChecks()) is None
    low = resample(samples, 22050, 16000)
    assert abs(low.size - round(samples.size * 16000 / 22050)) <= 1


def test_resampling_keeps_duration_and_tones_and_does_not_alias() -> None:
    rate = 22050
    t = np.arange(rate) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    out = resample(tone, rate, 16000)
    assert out.size == 16000
    assert abs(int(np.argmax(np.abs(np.fft.rfft(out)))) - 440) <= 1
    # A 10 kHz tone cannot exist at 16 kHz: a proper resampler removes it instead of folding
    # it down to 6 kHz, as naive decimation would.
    high = resample((0.5 * np.sin(2 * np.pi * 10_000 * t)).astype(np.float32), rate, 16000)
    assert rms_dbfs(high) < -60
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
        (np.full(16000 * 31, 0.3, np.float32), "a long sentence " * 40, "over_max_duration"),
        (np.tile(np.array([1.0, -1.0], np.float32), 16000), "hello there friend", "clipped"),
    ],
)
def test_clip_checks_name_the_problem(samples: np.ndarray, text: str, reason: str) -> None:
    result = check_clip(samples, 16000, text, ClipChecks())
    assert result is not None and result.startswith(reason)


def test_the_duration_bound_is_configurable() -> None:
    samples, text = np.full(16000 * 31, 0.3, np.float32), "a long sentence " * 40
    assert check_clip(samples, 16000, text, ClipChecks(max_duration_s=40.0)) is None


def test_output_shard_records_voice_licence_and_the_text_as_spoken(
    piper_service: SpeechService, tmp_path: Path
) -> None:
    texts = [
        "Dr. Smith paid $12.50 on the 3rd of May.",
        "A plain sentence to speak.",
        "Water boils at 100°C at sea level.",
        "Another plain sentence, a little longer than the second one.",
    ]
    out, quarantine = tmp_path / "part-00000.parquet", tmp_path / "q.parquet"
    result = synthesize_output_shard(selection(texts), out, quarantine, piper_service)
    assert not quarantine.exists() and not result.rejected
    shard = read_table(out, tables.SHARD)
    rows = shard.to_pylist()
    assert [r["text_id"] for r in rows] == ["t0", "t1", "t2", "t3"]
    assert rows[0]["text"] == texts[0]
    assert rows[0]["normalized_text"] == (
        "Doctor Smith paid twelve dollars and fifty cents on the third of May."
    )
    assert rows[2]["normalized_text"] == "Water boils at one hundred degrees Celsius at sea level."
    assert {(r["tts_engine"], r["tts_voice"], r["tts_license"]) for r in rows} == {
        ("piper", "en_US-joe-medium", "CC0-1.0")
    }
    assert all(r["asr_cer"] is None and r["sampling_rate"] == 16000 for r in rows)
    for row in rows:
        samples, rate = decode(row["audio"]["bytes"])
        assert rate == 16000 and abs(samples.size / rate - row["duration_s"]) < 1e-3
    features = json.loads(pq.read_schema(out).metadata[b"huggingface"])["info"]["features"]
    assert {"normalized_text", "tts_license", "asr_cer"} <= set(features)
    assert result.audio_seconds == pytest.approx(sum(r["duration_s"] for r in rows), rel=1e-6)


def test_probe_clips_carry_the_same_record(piper_service: SpeechService, tmp_path: Path) -> None:
    probes = write_table(
        pa.table(
            {
                "text_id": ["p0", "p1"],
                "cluster": pa.array([0, 1], pa.int32()),
                "text": ["Cats purr when they are content.", "It rained for 40 days."],
                "prefix_text": ["Cats purr when", "It rained for 40"],
                "continuation_text": ["they are content.", "days."],
            }
        ),
        tmp_path / "probes-00000.parquet",
        tables.PROBES,
    )
    clips_path = tmp_path / "clips-00000.parquet"
    synthesize_probe_shard(probes, clips_path, tmp_path / "q.parquet", piper_service)
    clips = read_table(clips_path, tables.CLIPS).to_pylist()
    assert [(c["spoken_text"], c["normalized_text"]) for c in clips] == [
        ("Cats purr when", "Cats purr when"),
        ("It rained for 40", "It rained for forty"),
    ]
    assert clips[0]["tts_license"] == "CC0-1.0"


def test_a_long_text_is_split_spoken_in_pieces_and_joined() -> None:
    sentence = "Here is one sentence of a long paragraph about rivers."
    tts = TTSSection(engine="espeak", max_chars=60)  # a limit of one sentence for this run
    with SpeechService(tts, "flac", seed=0) as service:
        spoken = service.speak([("long", " ".join([sentence] * 8)), ("one", sentence)])
    texts = [s for s in spoken if isinstance(s, SpokenText)]
    assert len(texts) == len(spoken)  # all spoken, none rejected
    ratio = texts[0].duration_s / texts[1].duration_s
    assert 7 < ratio < 10  # eight sentences and seven pauses: nothing truncated


@pytest.mark.parametrize(
    ("normalize", "expected"),
    [("auto", "It rained for forty days."), ("never", "It rained for 40 days.")],
)
def test_no_engine_reads_escapes_or_markup_even_unnormalised(
    normalize: Literal["auto", "never"], expected: str
) -> None:
    """With normalisation off (`never`) the text an engine reads is still without escapes,
    controls and markup, as with it on: for a corpus ingested before ingest cleaned it."""
    engine = create_engine(VoiceSpec(engine="espeak"), EngineOptions())
    settings = RenderSettings.of(TTSSection(engine="espeak", normalize=normalize), "flac")
    hostile = "<speak>It \x1b[31mrained\x00 <break time='1s'/>for 40 days.</speak>"
    spoken, pieces = prepare(engine, hostile, settings)
    assert spoken == expected and pieces == [spoken]


def test_failures_are_retried_then_quarantined_and_the_rest_is_spoken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exceptions, hangs and crashed workers are retried alone; failed checks are not."""
    monkeypatch.setenv(MARKS_ENV, str(tmp_path))
    texts = {
        "good": "A first good sentence to speak.",
        "fail": "This one will FAIL every time.",
        "flaky": "This one will FAIL ONCE and then work.",
        "crash-once": "This one will CRASH ONCE its worker and then work.",
        "silent": "This one is SILENT and checks catch it.",
        "hang": "This one will HANG every time.",
        "last": "A last good sentence to speak.",
    }
    tts = TTSSection(engine="espeak", workers=2, retries=1, timeout_s=2.0)
    start = time.monotonic()
    with SpeechService(tts, "flac", 0, factory=MisbehavingEngine) as service:
        results = service.speak(list(texts.items()))
    assert time.monotonic() - start < 120
    outcome = {r.text_id: (r.reason if not isinstance(r, SpokenText) else "ok") for r in results}
    assert outcome == {
        "good": "ok",
        "fail": "tts_error",
        "flaky": "ok",
        "crash-once": "ok",
        "silent": "silent",
        "hang": "tts_timeout",
        "last": "ok",
    }
    details = {r.text_id: r.detail for r in results if not isinstance(r, SpokenText)}
    assert "engine failed on purpose (after 2 attempts)" in details["fail"]
    assert "no result in 2 s (after 2 attempts)" in details["hang"]
    assert [r.text_id for r in results] == list(texts)


def test_quarantine_and_shard_together_hold_every_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MARKS_ENV, str(tmp_path))
    texts = ["A good sentence.", "This will FAIL now.", "SILENT text here.", "Another good one."]
    out, quarantine = tmp_path / "part.parquet", tmp_path / "q.parquet"
    tts = TTSSection(engine="espeak", retries=0)
    with SpeechService(tts, "wav", 0, factory=MisbehavingEngine) as service:
        synthesize_output_shard(selection(texts), out, quarantine, service)
    shard = pq.read_table(out)
    assert shard.column("text_id").to_pylist() == ["t0", "t3"]
    assert shard.column("rank").to_pylist() == [0, 3]
    rejected = read_table(quarantine, tables.QUARANTINE).to_pylist()
    assert {(r["text_id"], r["stage"], r["reason"], r["source"]) for r in rejected} == {
        ("t1", "tts", "tts_error", "part.parquet"),
        ("t2", "tts", "silent", "part.parquet"),
    }
    assert decode(shard.column("audio")[0].as_py()["bytes"])[1] == 16000


def test_worker_memory_stays_flat_over_many_clips() -> None:
    """The same 60 texts spoken five times: a worker's memory must not grow pass after pass."""
    with SpeechService(TTSSection(engine="espeak"), "flac", 0) as service:
        texts = [(f"w{i}", f"Memory check sentence number {i}, spoken again.") for i in range(60)]
        rss = []
        for _ in range(5):
            service.speak(texts)
            rss.append(service._pool.worker_rss_bytes()[0])
    # After the first pass: under 1 MB a pass (17 kB a clip), as a slope, not two samples.
    assert rss[0] > 0 and growth_per_pass(rss[1:]) < 2**20, [r // 2**20 for r in rss]
