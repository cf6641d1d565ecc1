"""The real flow, end to end, on a small corpus: shards, speech, manifest, quarantine, Prefect."""

from __future__ import annotations

import asyncio
import collections
import uuid

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.io import sha256_file
from saladpipe.data_schemas.manifest import Manifest
from saladpipe.tts.checks import rms_dbfs
from tests.factories import BAD_ROWS, E2ERun

pytestmark = pytest.mark.e2e


def _shards(run: E2ERun) -> list:
    return sorted((run.run_dir / "shards").glob("part-*.parquet"))


def test_run_succeeds_and_writes_manifest(e2e_run: E2ERun) -> None:
    assert e2e_run.exit_code == 0
    manifest = Manifest.read(e2e_run.run_dir / "manifest.json")
    assert manifest.counts["selected"] == 18
    assert manifest.counts["synthesized"] + _tts_quarantined(e2e_run) == 18
    assert manifest.counts["clusters"] == 4
    assert manifest.counts["probes"] == 12
    assert manifest.counts["probes_scored"] > 0
    assert manifest.models["teacher"] and manifest.models["student"]
    assert any("PLACEHOLDER" in note for note in manifest.notes)


def test_shards_load_with_pyarrow_and_match_schema(e2e_run: E2ERun) -> None:
    shards = _shards(e2e_run)
    assert len(shards) == 3  # 18 selected texts, 8 rows a shard
    for path in shards:
        table = pq.read_table(path)
        assert table.schema.equals(tables.SHARD, check_metadata=False)
        assert set(table.column("strategy").to_pylist()) == {"salad"}
        assert all(0 < p <= 1 for p in tables.floats(table.column("probability")))


def test_shards_load_with_datasets_audio_decoded(e2e_run: E2ERun) -> None:
    import datasets

    files = [str(p) for p in _shards(e2e_run)]
    ds = datasets.load_dataset("parquet", data_files=files, split="train")
    assert isinstance(ds.features["audio"], datasets.Audio)
    for row in ds:
        samples = row["audio"].get_all_samples()
        assert samples.sample_rate == row["sampling_rate"] == 16000
        audio = samples.data.numpy()[0]
        assert abs(audio.size / 16000 - row["duration_s"]) < 0.01
        _assert_speech_of(audio, 16000, row["text"])


def _assert_speech_of(audio: np.ndarray, rate: int, text: str) -> None:
    """English read speech: about 10 to 25 characters a second, clearly louder than silence."""
    seconds = audio.size / rate
    chars = len(text)
    assert chars / 25 - 0.5 <= seconds <= chars / 8 + 1.0, (seconds, chars, text)
    assert rms_dbfs(audio) > -35.0, text


def test_every_clip_carries_its_character_error_rate(e2e_run: E2ERun) -> None:
    """With `[tts.asr]` (the embedded default has it) every shard row and every probe
    clip records the CER of its transcript; the select stage sees the probes' CERs."""
    probe_clips = sorted((e2e_run.run_dir / "probes").glob("clips-*.parquet"))
    for path in [*_shards(e2e_run), *probe_clips]:
        cer = pq.read_table(path, columns=["asr_cer"]).column("asr_cer")
        assert cer.null_count == 0 and len(cer) > 0, path
        assert pc.min(cer).as_py() >= 0.0
    stats = pq.read_table(e2e_run.run_dir / "clusters" / "cluster_stats.parquet")
    assert stats.column("cer_measured").to_pylist() == [3, 3, 3, 3]  # 3 probes a cluster


def test_every_selected_text_appears_exactly_once(e2e_run: E2ERun) -> None:
    selected = pq.read_table(e2e_run.run_dir / "selection" / "round-000.parquet")
    selected_ids = selected.column("text_id").to_pylist()
    assert len(selected_ids) == len(set(selected_ids))
    written = [t for p in _shards(e2e_run) for t in pq.read_table(p).column("text_id").to_pylist()]
    assert len(written) == len(set(written))
    quarantined = _tts_quarantined_ids(e2e_run)
    assert not set(written) & quarantined
    assert set(written) | quarantined == set(selected_ids)


def test_manifest_checksums_match_files(e2e_run: E2ERun) -> None:
    manifest = Manifest.read(e2e_run.run_dir / "manifest.json")
    assert len(manifest.shards) == len(_shards(e2e_run))
    for entry in manifest.shards:
        path = e2e_run.run_dir / entry.path
        assert sha256_file(path) == entry.sha256
        assert path.stat().st_size == entry.bytes
        assert pq.read_metadata(path).num_rows == entry.rows
    assert manifest.config_hash and manifest.config["select"]["salad"]["gamma"] == 5.0


def test_quarantined_rows_carry_their_reasons(e2e_run: E2ERun) -> None:
    table = pq.read_table(e2e_run.run_dir / "quarantine" / "ingest-00000.parquet")
    reasons = collections.Counter(table.column("reason").to_pylist())
    assert reasons == collections.Counter(reason for _, reason in BAD_ROWS)
    assert all(table.column("source").to_pylist())
    manifest = Manifest.read(e2e_run.run_dir / "manifest.json")
    ingest = [q for q in manifest.quarantine if q.stage == "ingest"]
    assert ingest and ingest[0].rows == len(BAD_ROWS)
    assert manifest.counts["corpus_rows_read"] == manifest.counts["corpus_texts"] + len(BAD_ROWS)


def test_every_probe_is_scored_and_every_text_has_a_gap_estimate(e2e_run: E2ERun) -> None:
    from saladpipe.data_schemas.io import read_table

    score_paths = sorted((e2e_run.run_dir / "scores").glob("part-*.parquet"))
    scores = [read_table(p, tables.SCORES) for p in score_paths]
    assert sum(t.num_rows for t in scores) == 12
    for row in (r for t in scores for r in t.to_pylist() if r["status"] == "ok"):
        assert len(row["token_kl"]) == len(row["token_ids"]) == row["n_tokens"] > 0
        assert row["forgetting"] == 0.0  # the placeholder student's LM is the teacher's copy
    estimates = [
        read_table(p, tables.GAP_ESTIMATES)
        for p in sorted((e2e_run.run_dir / "scores").glob("estimates-*.parquet"))
    ]
    manifest = Manifest.read(e2e_run.run_dir / "manifest.json")
    assert sum(t.num_rows for t in estimates) == manifest.counts["corpus_texts"]
    # Scored probes keep their measured gap (no neighbours); every other text is estimated.
    measured = sum(t.column("n_neighbors").to_pylist().count(0) for t in estimates)
    assert measured == manifest.counts["probes_scored"] > 0
    assert any(note.startswith("gap propagation: Spearman") for note in manifest.notes)


def test_local_prefect_server_kept_the_flow_and_all_its_tasks(e2e_run: E2ERun) -> None:
    """The run started its own server and stopped it; a new server on the same database
    still has the flow run and every task run (the in-process test server would not)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from saladpipe.flows.server import local_prefect_server

    assert e2e_run.flow_run_id
    flow_run_id = uuid.UUID(e2e_run.flow_run_id)

    async def read() -> tuple[str, list[str]]:
        async with get_client() as client:
            flow_run = await client.read_flow_run(flow_run_id)
            task_runs = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id]))
            )
            assert flow_run.state_type is not None  # a finished run has a state
            return flow_run.state_type.value, [t.name for t in task_runs]

    assert (e2e_run.run_dir / "state" / "prefect" / "prefect.db").is_file()
    with (
        local_prefect_server(e2e_run.run_dir / "state") as url,
        temporary_settings(updates={PREFECT_API_URL: url}),
    ):
        state, names = asyncio.run(read())
    assert state == "COMPLETED"
    stages = collections.Counter(name.rsplit("-", 1)[0] for name in names)
    assert stages["synthesize-shard"] == 3
    assert stages["embed-shard"] == 2  # 48 good texts, 40 rows a corpus shard
    assert {"ingest", "fit-centroids", "draw-probes", "select", "write-manifest"} <= set(stages)


def _tts_quarantined_ids(run: E2ERun) -> set[str]:
    paths = sorted((run.run_dir / "quarantine").glob("tts-*.parquet"))
    return {t for p in paths for t in tables.strings(pq.read_table(p).column("text_id"))}


def _tts_quarantined(run: E2ERun) -> int:
    return len(_tts_quarantined_ids(run))
