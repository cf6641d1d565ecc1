"""The ASR round trip: a local Whisper or wav2vec2-CTC checkpoint gives every clip a CER.

The recognisers here are built from configs with random weights, so their transcripts
are noise; the loading, batching, windowing and scoring code is the real one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.config import AsrCheck, TTSSection, parse_config
from saladpipe.data_schemas.errors import ConfigError
from saladpipe.data_schemas.io import read_table
from saladpipe.pipeline.synthesize import synthesize_output_shard
from saladpipe.tts import SpeechService
from saladpipe.tts.asr import (
    Transcriber,
    character_error_rate,
    rejected_cer,
    rejection_detail,
)
from tests.tts_factories import tiny_ctc_asr, tiny_whisper_asr


def test_cer_compares_what_was_said_not_how_it_was_written() -> None:
    assert character_error_rate("It costs $5, Dr. Lee!", "it costs five dollars doctor lee") == 0
    assert character_error_rate("the cat", "the bat") == pytest.approx(1 / 7)
    assert character_error_rate("the cat", "") == 1.0
    assert character_error_rate("...", "") == 0.0
    assert character_error_rate("", "words heard in silence") == 1.0
    # Edits over the reference's length: a transcript longer than the text can exceed 1.
    assert character_error_rate("ab", "abcdef") == 2.0
    assert character_error_rate("kitten", "sitting") == pytest.approx(3 / 6)


def test_a_rejection_detail_gives_back_its_cer() -> None:
    detail = rejection_detail(0.87654, 0.3, "some words")
    assert detail.startswith("asr_cer: 0.8765 > 0.30; heard ")
    assert rejected_cer(detail) == pytest.approx(0.8765)
    assert rejected_cer("timeout: 300 s") is None


@pytest.fixture(scope="module")
def recognisers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("asr")
    return {"ctc": tiny_ctc_asr(root / "ctc"), "whisper": tiny_whisper_asr(root / "whisper")}


def test_both_kinds_of_recogniser_load_from_a_folder_and_transcribe(
    recognisers: dict[str, Path],
) -> None:
    clips = [
        (0.1 * np.random.default_rng(i).standard_normal(8000 * (i + 1))).astype(np.float32)
        for i in range(3)
    ]
    ctc = Transcriber(AsrCheck(model=recognisers["ctc"], device="cpu", batch_size=2))
    assert not ctc.is_whisper and ctc.sample_rate == 16000
    heard = ctc.transcribe(clips, 8000)
    assert len(heard) == 3 and all(isinstance(t, str) for t in heard)
    whisper = Transcriber(AsrCheck(model=recognisers["whisper"], device="cpu", batch_size=2))
    assert whisper.is_whisper
    assert len(whisper.transcribe(clips, 8000, "en_US")) == 3
    # Whisper hears 30 s at a time: a 70 s clip is heard in three windows.
    assert len(whisper._windows(np.zeros(70 * 16000, np.float32))) == 3


def test_a_run_records_the_cer_of_every_clip_and_quarantines_above_the_limit(
    recognisers: dict[str, Path], tmp_path: Path
) -> None:
    texts = ["Cats sleep in the sun.", "It rained for 3 days."]
    selection = pa.table(
        {
            "text_id": ["a", "b"],
            "text": texts,
            "domain": ["d", "d"],
            "cluster": pa.array([0, 1], pa.int32()),
            "cluster_gap": [0.1, 0.2],
            "gap_score": [0.1, 0.2],
            "selection_round": pa.array([0, 0], pa.int32()),
            "strategy": ["salad", "salad"],
            "probability": [0.5, 0.5],
            "rank": [0, 1],
        }
    )
    recorded = AsrCheck(model=recognisers["ctc"], max_cer=None, device="cpu")
    with SpeechService(TTSSection(engine="espeak", asr=recorded), "flac", 0) as service:
        synthesize_output_shard(selection, tmp_path / "kept.parquet", tmp_path / "q1", service)
    rows = read_table(tmp_path / "kept.parquet", tables.SHARD).to_pylist()
    assert [r["text_id"] for r in rows] == ["a", "b"]
    assert all(r["asr_cer"] is not None and r["asr_cer"] >= 0 for r in rows)

    strict = AsrCheck(model=recognisers["ctc"], max_cer=0.0, device="cpu")
    out, quarantine = tmp_path / "strict.parquet", tmp_path / "q2.parquet"
    with SpeechService(TTSSection(engine="espeak", asr=strict), "flac", 0) as service:
        synthesize_output_shard(selection, out, quarantine, service)
    assert not out.exists()  # noise transcripts cannot match: every clip fails the check
    rejected = read_table(quarantine, tables.QUARANTINE).to_pylist()
    assert {r["reason"] for r in rejected} == {"asr_cer"}
    assert all(r["detail"].startswith("asr_cer: ") and "> 0.00" in r["detail"] for r in rejected)


def test_asr_checkpoints_are_checked_at_the_edge(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"tts\.asr\.model: Path does not point to a directory"):
        parse_config(
            '[corpus]\nbuiltin = "wordnet-domains"\n[tts.asr]\nmodel = "missing"\n',
            "test",
            tmp_path,
        )
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(
        '{"model_type": "bert", "architectures": ["BertModel"]}'
    )
    with pytest.raises(ConfigError, match="neither a Whisper nor a CTC model"):
        Transcriber(AsrCheck(model=tmp_path / "bert"))
