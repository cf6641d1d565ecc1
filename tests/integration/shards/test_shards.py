"""Shards as trainers load them: Hugging Face datasets, Lhotse Shar, the IterableDataset,
NeMo manifests; the writer's layout; `verify` against corruption."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.errors import SchemaError
from saladpipe.data_schemas.io import read_table, sha256_file
from saladpipe.data_schemas.manifest import Manifest
from saladpipe.data_schemas.shard_writer import ShardLimits, ShardWriter
from saladpipe.shards.dataset import ShardDataset
from saladpipe.shards.export import PROVENANCE
from saladpipe.shards.verify import verify_run
from saladpipe.tts.audio import resample
from tests.factories import ToneEngine, tone_run


@pytest.fixture(scope="module")
def toned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    """A finished run folder whose clips are known tones, and the 16 kHz audio of each;
    shards small enough to rotate and hold several row groups, as big runs do."""
    limits = ShardLimits(max_bytes=50_000, row_group_bytes=20_000)
    return tone_run(tmp_path_factory.mktemp("toned"), n=24, limits=limits)


def test_tone_run_shards_rotated_and_listed_in_the_manifest(
    toned: tuple[Path, dict[str, np.ndarray]],
) -> None:
    run, audio = toned
    files = sorted((run / "shards").glob("*.parquet"))
    manifest = Manifest.read(run / "manifest.json")
    assert sorted(s.path for s in manifest.shards) == [str(p.relative_to(run)) for p in files]
    assert any("-001" in p.name for p in files)
    assert max(pq.read_metadata(p).num_row_groups for p in files) >= 2
    assert sum(pq.read_metadata(p).num_rows for p in files) == len(audio)
    assert verify_run(run) == []


def _expected(engine_audio: dict[str, np.ndarray], text_id: str) -> np.ndarray:
    return resample(engine_audio[text_id], ToneEngine.RATE, 16000)


def test_datasets_decodes_what_was_synthesized(toned: tuple[Path, dict[str, np.ndarray]]) -> None:
    import datasets

    run, audio = toned
    files = [str(p) for p in sorted((run / "shards").glob("*.parquet"))]
    ds = datasets.load_dataset("parquet", data_files=files, split="train")
    assert isinstance(ds.features["audio"], datasets.Audio)
    assert len(ds) == len(audio)
    for row in ds:
        decoded = row["audio"].get_all_samples().data.numpy()[0]
        np.testing.assert_allclose(decoded, _expected(audio, row["text_id"]), atol=2e-4)


def test_lhotse_shar_export_loads_with_from_shar(
    toned: tuple[Path, dict[str, np.ndarray]], tmp_path: Path
) -> None:
    from lhotse import CutSet

    from saladpipe.cli import main

    run, audio = toned
    assert main(["export", str(run), str(tmp_path / "shar"), "--shard-size", "10"]) == 0
    cuts = CutSet.from_shar(in_dir=tmp_path / "shar")
    rows = _shard_rows(run)
    seen = set()
    for cut in cuts:
        seen.add(cut.id)
        assert cut.supervisions[0].text == rows[cut.id]["text"]
        # Every provenance column of the shard, read back from the cut (exports.py).
        assert set(PROVENANCE) >= {"tts_license", "normalized_text", "asr_cer", "strategy"}
        assert {name: cut.custom[name] for name in PROVENANCE} == _provenance(rows[cut.id])
        np.testing.assert_allclose(cut.load_audio()[0], _expected(audio, cut.id), atol=2e-4)
    assert seen == set(audio)


def _shard_rows(run: Path) -> dict[str, dict[str, Any]]:
    return {
        row["text_id"]: row
        for path in sorted((run / "shards").glob("*.parquet"))
        for row in pq.read_table(path).to_pylist()
    }


def _provenance(row: dict[str, Any]) -> dict[str, Any]:
    """The row's provenance as JSON reads it back (float32 columns widened to float)."""
    return json.loads(json.dumps({name: row[name] for name in PROVENANCE}))


def test_nemo_manifest_export(toned: tuple[Path, dict[str, np.ndarray]], tmp_path: Path) -> None:
    from saladpipe.cli import main

    run, audio = toned
    assert main(["export", str(run), str(tmp_path / "nemo"), "--format", "nemo"]) == 0
    lines = (tmp_path / "nemo" / "manifest.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert {r["text_id"] for r in records} == set(audio)
    rows = _shard_rows(run)
    for record in records:
        assert {name: record[name] for name in PROVENANCE} == _provenance(rows[record["text_id"]])
        assert Path(record["audio_filepath"]).is_file()
        assert record["duration"] == pytest.approx(
            _expected(audio, record["text_id"]).size / 16000, abs=1e-3
        )
        assert record["text"]


def test_iterable_dataset_splits_ranks_and_workers_without_overlap(
    toned: tuple[Path, dict[str, np.ndarray]],
) -> None:
    from torch.utils.data import DataLoader

    run, audio = toned
    seen: list[str] = []
    for rank in range(2):
        ds = ShardDataset(run, rank=rank, world_size=2, shuffle_seed=3)
        # spawn: forked workers would inherit the test process's Prefect threads and atexit hooks
        loader = DataLoader(ds, batch_size=None, num_workers=2, multiprocessing_context="spawn")
        for row in loader:
            seen.append(row["text_id"])
            np.testing.assert_allclose(row["audio"], _expected(audio, row["text_id"]), atol=2e-4)
    assert sorted(seen) == sorted(audio)


def test_iterable_dataset_shuffles_by_seed_and_epoch(
    toned: tuple[Path, dict[str, np.ndarray]],
) -> None:
    run, _ = toned
    ds = ShardDataset(run, decode_audio=False, shuffle_seed=1, rank=0, world_size=1)
    first = [r["text_id"] for r in ds]
    assert first == [r["text_id"] for r in ds]
    ds.set_epoch(1)
    second = [r["text_id"] for r in ds]
    assert sorted(first) == sorted(second)


def test_writer_rotates_by_size_and_keeps_audio_uncompressed(tmp_path: Path) -> None:
    rows = 40
    table = pa.table(
        {
            "text_id": [f"t{i}" for i in range(rows)],
            "text": ["x"] * rows,
            "audio": [
                {
                    "bytes": bytes(np.random.default_rng(i).integers(0, 255, 20_000, np.uint8)),
                    "path": f"t{i}.flac",
                }
                for i in range(rows)
            ],
            "sampling_rate": pa.array([16000] * rows, pa.int32()),
            "duration_s": pa.array([1.0] * rows, pa.float32()),
            "domain": [None] * rows,
            "cluster": pa.array([0] * rows, pa.int32()),
            "cluster_gap": [0.1] * rows,
            "gap_score": [0.1] * rows,
            "selection_round": pa.array([0] * rows, pa.int32()),
            "strategy": ["salad"] * rows,
            "probability": [0.01] * rows,
            "rank": list(range(rows)),
            "tts_engine": ["piper"] * rows,
            "tts_voice": ["v"] * rows,
            "normalized_text": ["x"] * rows,
            "tts_license": ["CC0-1.0"] * rows,
            "asr_cer": pa.array([None] * rows, pa.float32()),
        }
    )
    with ShardWriter(
        tmp_path, "part-00000", tables.SHARD, max_bytes=300_000, row_group_bytes=100_000
    ) as writer:
        for start in range(0, rows, 4):
            writer.write(table.slice(start, 4))
    assert len(writer.paths) >= 2
    assert sum(pq.read_metadata(p).num_rows for p in writer.paths) == rows
    metadata = pq.read_metadata(writer.paths[0])
    assert metadata.num_row_groups >= 2
    audio_chunk = metadata.row_group(0).column(2)
    assert audio_chunk.path_in_schema == "audio.bytes"
    assert audio_chunk.compression == "UNCOMPRESSED"
    assert (
        "RLE_DICTIONARY" not in audio_chunk.encodings
        and "PLAIN_DICTIONARY" not in audio_chunk.encodings
    )
    assert metadata.row_group(0).column(0).compression == "ZSTD"


def test_writer_leaves_nothing_behind_on_error(tmp_path: Path) -> None:
    with (
        pytest.raises(RuntimeError),
        ShardWriter(tmp_path, "part", tables.CORPUS, row_group_bytes=1) as writer,
    ):
        writer.write(pa.table({"text_id": ["a"], "text": ["b"], "domain": [None], "source": ["s"]}))
        raise RuntimeError("crash mid-shard")
    assert list(tmp_path.iterdir()) == []


def test_a_shard_of_another_schema_version_is_refused_naming_the_version(
    toned: tuple[Path, dict[str, np.ndarray]], tmp_path: Path
) -> None:
    """Readers and `verify` refuse a file of another version with a message naming it."""
    run = tmp_path / "run"
    shutil.copytree(toned[0], run)
    shard = sorted((run / "shards").glob("*.parquet"))[0]
    table = pq.read_table(shard)
    metadata = {**table.schema.metadata, tables.VERSION_KEY: b"0"}
    pq.write_table(table.replace_schema_metadata(metadata), shard)
    manifest = json.loads((run / "manifest.json").read_text())  # as if written so
    entry = next(e for e in manifest["shards"] if e["path"] == str(shard.relative_to(run)))
    entry.update(sha256=sha256_file(shard), bytes=shard.stat().st_size)
    (run / "manifest.json").write_text(json.dumps(manifest))
    current = tables.SCHEMA_VERSION
    message = f"{shard}: written with schema version 0, this saladpipe reads {current}"
    with pytest.raises(SchemaError) as refused:
        ShardDataset(run / "shards")
    assert str(refused.value) == message
    with pytest.raises(SchemaError, match="schema version 0"):
        read_table(shard, tables.SHARD)
    assert [(p.kind, p.detail) for p in verify_run(run)] == [("unreadable", message)]
