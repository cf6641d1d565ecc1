"""Faults in a real run: an engine that fails on a share of texts, and a shard task
that fails once (retried) or every time (its rows quarantined); the run finishes and
no row is lost: each selected text is in the shards or in quarantine with a reason."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from saladpipe.audit.artifacts import artifact_key
from saladpipe.cli import main
from saladpipe.data_schemas.layout import RunLayout
from saladpipe.data_schemas.manifest import Manifest
from saladpipe.data_schemas.tables import strings
from saladpipe.pipeline import synthesize
from saladpipe.shards.verify import verify_run
from saladpipe.tts import SpeechService
from saladpipe.tts.service import SpeechSpec
from tests.factories import FlakyEngine, small_wordnet_corpus, write_config, write_jsonl

pytestmark = pytest.mark.e2e


def _flaky_service(spec: SpeechSpec) -> SpeechService:
    """The run's voices made to fail on a share of texts (built and closed like the real)."""
    return SpeechService(spec.tts, spec.audio_format, spec.seed, factory=FlakyEngine)


@pytest.fixture(scope="module")
def faulty_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("faults")
    keep = {"noun.animal", "noun.food", "verb.motion"}
    rows = [r for r in small_wordnet_corpus(per_domain=12).to_pylist() if r["domain"] in keep]
    corpus = write_jsonl(tmp / "corpus.jsonl", rows)
    layout = RunLayout(tmp / "run")
    config = write_config(
        tmp / "faults.toml",
        corpus,
        layout.root,
        cluster={"k": 3, "iterations": 5},
        probe={"per_cluster": 3, "shard_rows": 9},
        select={"strategy": "salad", "budget_texts": 15},
        output={"shard_rows": 5},
    )
    calls: dict[str, int] = {}
    real = synthesize.synthesize_output_shard

    def failing_shards(selection: pa.Table, out_path: Path, *args: Any) -> Any:
        calls[out_path.name] = calls.get(out_path.name, 0) + 1
        if out_path.name == "part-00001.parquet" and calls[out_path.name] == 1:
            raise OSError("disk briefly full")  # a passing fault: the retry succeeds
        if out_path.name == "part-00002.parquet":
            raise OSError("disk gone")  # every attempt fails
        return real(selection, out_path, *args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SpeechSpec, "build", _flaky_service)
        patch.setattr(synthesize, "synthesize_output_shard", failing_shards)
        code = main(["run", str(config)])
    return {"code": code, "layout": layout, "calls": calls}


def _quarantine(layout: RunLayout, stage: str) -> list[dict[str, Any]]:
    return [
        row
        for path in sorted(layout.quarantine_dir.glob(f"{stage}-*.parquet"))
        for row in pq.read_table(path).to_pylist()
    ]


def test_every_selected_row_is_in_a_shard_or_quarantined_with_its_reason(
    faulty_run: dict[str, Any],
) -> None:
    layout: RunLayout = faulty_run["layout"]
    assert faulty_run["code"] == 0
    assert faulty_run["calls"] == {f"part-0000{i}.parquet": n for i, n in enumerate([1, 2, 3])}
    selected = strings(pq.read_table(layout.selection(0)).column("text_id"))
    shard_rows = [
        r for p in sorted(layout.shards_dir.glob("*.parquet")) for r in pq.read_table(p).to_pylist()
    ]
    quarantined = _quarantine(layout, "tts")
    spoken = [r["text_id"] for r in shard_rows]
    assert len(selected) == 15 and len(spoken) == len(set(spoken))
    assert sorted(spoken + [r["text_id"] for r in quarantined]) == sorted(selected)
    # The engine's faults: permanent ones quarantined, passing ones retried into the shards.
    faults = [FlakyEngine.fault(r["normalized_text"]) for r in shard_rows]
    assert "always" not in faults and "once" in faults
    reasons = {r["reason"] for r in quarantined}
    assert reasons == {"tts_error", "task_failed"}
    engine_failed = [r for r in quarantined if r["reason"] == "tts_error"]
    assert engine_failed and all("injected always fault" in r["detail"] for r in engine_failed)
    # The task that kept failing: all 5 of its rows, with the error and the attempts.
    task_failed = [r for r in quarantined if r["reason"] == "task_failed"]
    assert len(task_failed) == 5 and {r["source"] for r in task_failed} == {"part-00002.parquet"}
    assert all("failed 3 times: OSError: disk gone" in r["detail"] for r in task_failed)
    assert not (layout.shards_dir / "part-00002.parquet").exists()
    assert verify_run(layout.root) == []


def test_failures_are_listed_in_the_manifest_and_a_prefect_artifact(
    faulty_run: dict[str, Any],
) -> None:
    layout: RunLayout = faulty_run["layout"]
    manifest = Manifest.read(layout.manifest)
    reasons = {e.path: e.reasons for e in manifest.quarantine}
    assert reasons["quarantine/tts-00002.parquet"] == {"task_failed": 5}
    assert any("tts-00002.parquet: 5 texts quarantined" in note for note in manifest.notes)
    assert (
        manifest.counts["synthesized"]
        + sum(n for e in manifest.quarantine if e.stage == "tts" for n in e.reasons.values())
        == manifest.counts["selected"]
    )

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from saladpipe.flows.server import local_prefect_server

    key = f"{artifact_key(manifest.run_name)}-failures"

    async def read() -> list[Any]:
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
            )

    from prefect.settings import PREFECT_API_URL, temporary_settings

    with (
        local_prefect_server(layout.state) as url,
        temporary_settings(updates={PREFECT_API_URL: url}),
    ):
        found = asyncio.run(read())
    assert len(found) == 1
    table = found[0].data
    rows = json.loads(table) if isinstance(table, str) else table
    failed = [r for r in rows if r["reason"] == "task_failed"]
    assert failed == [
        {
            "stage": "tts",
            "file": "part-00002.parquet",
            "reason": "task_failed",
            "detail": "synthesize-shard failed 3 times: OSError: disk gone",
            "rows": 5,
        }
    ]
