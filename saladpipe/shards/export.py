"""Exports of a run's shards for trainers that read other formats.

- Lhotse Shar (cuts JSONL + audio tars), which NeMo's speech-LLM recipes and Lhotse
  dataloaders read with `CutSet.from_shar`.
- A NeMo manifest: JSON lines with `audio_filepath`, `text`, `duration`, next to the
  audio files it points at.
Both stream row group by row group and keep every provenance column of the shard
(`PROVENANCE`: selection, TTS engine, voice, licence, normalised text, ASR error).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.io import atomic_path
from saladpipe.shards.dataset import ShardDataset

# Shard columns each format holds in fields of its own; every other column (selection
# provenance, TTS engine, voice, licence, the text as spoken, ASR error) is carried
# along: Lhotse as cut `custom` fields, NeMo as manifest keys.
_AS_FIELDS = frozenset({"text_id", "text", "audio", "sampling_rate", "duration_s"})
PROVENANCE = tuple(name for name in tables.SHARD.names if name not in _AS_FIELDS)


def _rows(run_dir: Path) -> Iterator[dict[str, Any]]:
    yield from ShardDataset(run_dir, decode_audio=False, rank=0, world_size=1)


def export_lhotse_shar(
    run_dir: Path, out_dir: Path, shard_size: int = 1000
) -> dict[str, list[str]]:
    """Write Lhotse Shar files (cuts.*.jsonl.gz, recording.*.tar); returns their paths by field."""
    from lhotse import CutSet, MonoCut, Recording, SupervisionSegment

    def cuts() -> Iterator[MonoCut]:
        for row in _rows(run_dir):
            recording = Recording.from_bytes(row["audio"]["bytes"], recording_id=row["text_id"])
            supervision = SupervisionSegment(
                id=row["text_id"],
                recording_id=row["text_id"],
                start=0.0,
                duration=recording.duration,
                channel=0,
                text=row["text"],
                language="en",
            )
            yield MonoCut(
                id=row["text_id"],
                start=0.0,
                duration=recording.duration,
                channel=0,
                recording=recording,
                supervisions=[supervision],
                custom={name: row[name] for name in PROVENANCE},
            )

    out_dir.mkdir(parents=True, exist_ok=True)
    cut_set = CutSet.from_cuts(cuts())
    return cut_set.to_shar(out_dir, fields={"recording": "flac"}, shard_size=shard_size)


def export_nemo_manifest(run_dir: Path, out_dir: Path) -> Path:
    """Write audio files under out_dir/audio and out_dir/manifest.jsonl in NeMo's field names."""
    audio_dir = out_dir / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    manifest = out_dir / "manifest.jsonl"
    with atomic_path(manifest) as tmp, tmp.open("w", encoding="utf-8") as fh:
        for row in _rows(run_dir):
            audio_path = audio_dir / row["audio"]["path"]
            with atomic_path(audio_path) as audio_tmp:
                audio_tmp.write_bytes(row["audio"]["bytes"])
            record = {
                "audio_filepath": str(audio_path.resolve()),
                "text": row["text"],
                "duration": round(float(row["duration_s"]), 4),
                "text_id": row["text_id"],
                **{name: row[name] for name in PROVENANCE},
            }
            fh.write(json.dumps(record) + "\n")
    return manifest
