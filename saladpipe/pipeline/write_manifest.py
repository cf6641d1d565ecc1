"""Write the run manifest: config, versions, voices, counts, shard checksums, quarantine reasons."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import platform
from collections import Counter
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.config import RunConfig
from saladpipe.data_schemas.io import sha256_file, write_text
from saladpipe.data_schemas.layout import RunLayout
from saladpipe.data_schemas.manifest import Manifest, QuarantineEntry, ShardEntry, VoiceEntry
from saladpipe.pipeline.ledger import RoundInputs
from saladpipe.pipeline.score import scoring_counts, scoring_model_ids
from saladpipe.pipeline.select import SelectOutcome
from saladpipe.pipeline.stage import Stage
from saladpipe.tts.registry import voice_engines
from saladpipe.tts.voices import check_voices

# Beside these, each engine of the run names its own (`TTSEngine.packages`).
_VERSIONED = (
    "saladpipe",
    "torch",
    "transformers",
    "sentence-transformers",
    "faiss-cpu",
    "pyarrow",
    "prefect",
    "numpy",
)


def package_versions(config: RunConfig) -> dict[str, str]:
    """Versions of Python and the packages whose behaviour shapes the output: the
    pipeline's and those of the run's TTS engines."""
    versions = {"python": platform.python_version()}
    engines = [name for engine in voice_engines(config.tts) for name in engine.packages]
    for name in dict.fromkeys([*_VERSIONED, *engines]):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def shard_entry(root: Path, path: Path) -> ShardEntry:
    """Checksum, size, rows and audio seconds of one output shard."""
    table = pq.read_table(path, columns=["duration_s"])
    return ShardEntry(
        path=str(path.relative_to(root)),
        sha256=sha256_file(path),
        bytes=path.stat().st_size,
        rows=table.num_rows,
        audio_seconds=float(pc.sum(table.column("duration_s")).as_py() or 0.0),
    )


def quarantine_entry(root: Path, path: Path) -> QuarantineEntry:
    """Rows of one quarantine table, counted by reason."""
    table = pq.read_table(path, columns=["stage", "reason"])
    stages = set(tables.strings(table.column("stage")))
    return QuarantineEntry(
        stage=",".join(sorted(stages)),
        path=str(path.relative_to(root)),
        rows=table.num_rows,
        reasons=dict(Counter(tables.strings(table.column("reason")))),
    )


def voice_entries(config: RunConfig) -> list[VoiceEntry]:
    """The run's voices as its config names them, resolved without loading a model."""
    return [
        VoiceEntry(engine.name, info.name, info.license, info.deterministic)
        for engine, info in zip(voice_engines(config.tts), check_voices(config.tts), strict=True)
    ]


def nondeterministic_notes(voices: list[VoiceEntry]) -> list[str]:
    """A note for every voice whose clips are not a function of text and seed."""
    return [
        f"voice {v.engine} {v.voice} is not deterministic: its clips differ between runs of "
        "the same config and seed (a resumed run reuses the clips it finished)"
        for v in voices
        if not v.deterministic
    ]


def write_manifest(
    config: RunConfig,
    layout: RunLayout,
    shards: list[Path],
    models: dict[str, str],
    counts: dict[str, int],
    notes: list[str],
    flow_run_id: str | None = None,
    out_path: Path | None = None,
) -> Manifest:
    """Describe the finished run; written last (to `out_path`, by default the layout's), so
    its presence means the run completed."""
    quarantine = (
        sorted(layout.quarantine_dir.glob("*.parquet")) if layout.quarantine_dir.exists() else []
    )
    entries = [quarantine_entry(layout.root, p) for p in quarantine]
    voices = voice_entries(config)
    failed_tasks = [
        f"{e.path}: {e.reasons['task_failed']} texts quarantined because their synthesis "
        "task kept failing (the error is in the table's detail column)"
        for e in entries
        if "task_failed" in e.reasons
    ]
    manifest = Manifest(
        run_name=config.run.name,
        config_hash=config.config_hash(),
        config=config.model_dump(mode="json"),
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        versions=package_versions(config),
        models=models,
        counts=counts,
        shards=[shard_entry(layout.root, p) for p in shards],
        quarantine=entries,
        voices=voices,
        notes=[*notes, *nondeterministic_notes(voices), *failed_tasks],
        prefect_flow_run_id=flow_run_id,
    )
    write_text(manifest.to_json(), out_path or layout.manifest)
    return manifest


def write_round_manifest(
    config: RunConfig,
    layout: RunLayout,
    all_shards: list[Path],
    round_shards: list[Path],
    synthesized: int,
    probe_shards: list[Path],
    scores: list[Path],
    pool: RoundInputs,
    outcome: SelectOutcome,
    notes: list[str],
    out_path: Path,
    flow_run_id: str | None,
) -> Manifest:
    """The manifest stage: the folder as its latest round leaves it (`all_shards`: every
    round's; counts and notes of this round), written last to `out_path`."""
    counts = {
        **pool.counts,
        "clusters": config.cluster.k,
        "round": layout.round_index,
        **outcome.counts,
        "synthesized": synthesized,
        "shards": len(round_shards),
        **scoring_counts(probe_shards, scores),
    }
    models = {
        **scoring_model_ids(scores),
        "embedder": config.embed.model,
        "tts": ", ".join(f"{v.engine}:{v.voice or 'default'}" for v in config.tts.voice_specs()),
    }
    return write_manifest(config, layout, all_shards, models, counts, notes, flow_run_id, out_path)


MANIFEST = Stage(
    "write-manifest",
    write_round_manifest,
    reads=("all_shards", "round_shards", "probe_shards", "scores", "outcome"),
    keeps=("out_path",),
    unkeyed=("flow_run_id",),
)
