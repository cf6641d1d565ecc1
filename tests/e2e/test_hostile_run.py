"""A real run on a hostile corpus: every input ends in a shard or a quarantine, and no TTS is
spent on a text ingest could have refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.factories import small_wordnet_corpus, write_config, write_jsonl
from tests.hostile_factories import (
    KEPT,
    MAX_CHARS,
    hostile_rows,
    write_hostile_jsonl,
)

# The English voice reads Arabic and Hebrew script as letter names (25 s for 38 characters:
# too_long per character) and a 300-digit number digit by digit (75 s): ingest knows neither
# the voice nor whether it normalises, so these rows are checked at ingest only.
_VOICE_BOUND = {"rtl-arabic", "rtl-hebrew", "persian-zwnj", "huge-number"}
# What ingest exists to catch before TTS: none of these may come back from TTS.
_REFUSABLE = {
    "tts_error",
    "empty_text",
    "empty_audio",
    "too_short",
    "too_long",
    "over_max_duration",
}


@pytest.mark.e2e
def test_a_real_run_spends_no_tts_on_a_text_ingest_could_refuse(tmp_path: Path) -> None:
    from saladpipe.cli import main
    from saladpipe.data_schemas.manifest import Manifest

    folder = tmp_path / "corpus"
    folder.mkdir()
    rows = [r for r in hostile_rows() if r.name not in _VOICE_BOUND]
    expected = write_hostile_jsonl(folder / "hostile.jsonl", rows)
    glosses = small_wordnet_corpus(per_domain=5).to_pylist()[:20]
    write_jsonl(folder / "wordnet.jsonl", glosses)
    run_dir = tmp_path / "run"
    config = write_config(
        tmp_path / "run.toml",
        folder,
        run_dir,
        corpus={"max_chars": MAX_CHARS},
        select={"strategy": "random", "budget_texts": 1000},
    )
    assert main(["run", str(config)]) == 0

    shards = {
        t
        for p in (run_dir / "shards").glob("part-*.parquet")
        for t in pq.read_table(p).column("text_id").to_pylist()
    }
    quarantined: dict[str, list[dict[str, Any]]] = {}
    for path in (run_dir / "quarantine").glob("*.parquet"):
        for row in pq.read_table(path).to_pylist():
            quarantined.setdefault(row["text_id"], []).append(row)
    for row in (r for rows in quarantined.values() for r in rows):
        assert row["reason"] and row["detail"], row
    for e in expected:
        if e.outcome == KEPT:
            assert e.text_id in shards or e.text_id in quarantined, e
        else:
            assert [(r["stage"], r["reason"]) for r in quarantined[e.text_id]] == [
                ("ingest", e.outcome)
            ]
    for gloss in glosses:
        assert gloss["id"] in shards or gloss["id"] in quarantined, gloss
    hostile_ids = {e.text_id for e in expected}
    spent = [
        (text_id, r["stage"], r["reason"])
        for text_id in hostile_ids & set(quarantined)
        for r in quarantined[text_id]
        if r["stage"] in ("tts", "probe_tts") and r["reason"] in _REFUSABLE
    ]
    assert not spent
    # What cleaning removed is counted in the manifest, by kind.
    counts = Manifest.read(run_dir / "manifest.json").counts
    assert counts["texts_cleaned"] > 0
    assert {f"cleaned_{kind}" for kind in ("escapes", "controls", "markup")} <= set(counts)
