"""Synthesize: speak texts with a TTS engine, check every clip, encode it for storage.

Shared by the probe clips (the spoken prefixes that scoring needs) and the output
shards (the selected texts). A text whose synthesis raises or whose clip fails a
check goes to quarantine with the reason; the shard holds only good clips.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.config import OutputSection, TTSSection
from saladpipe.data_schemas.io import read_table, write_table
from saladpipe.pipeline.progress import Progress
from saladpipe.pipeline.quarantine import quarantine_table
from saladpipe.tts import ClipLimits, TTSEngine, check_clip
from saladpipe.tts.audio import encode, resample

# Characters allowed in the file name a clip carries in its `path` field.
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class Clip:
    """One checked clip at the configured rate, already encoded."""

    text_id: str
    spoken_text: str
    audio_bytes: bytes
    audio_path: str
    sampling_rate: int
    duration_s: float


@dataclass(frozen=True)
class SynthesisResult:
    """Good clips in input order, and the rejected texts with reasons."""

    clips: list[Clip]
    rejected: list[dict[str, Any]]

    @property
    def audio_seconds(self) -> float:
        return float(sum(c.duration_s for c in self.clips))


def synthesize_texts(
    items: list[tuple[str, str]],
    engine: TTSEngine,
    tts: TTSSection,
    audio_format: str,
    source: str,
    limits: ClipLimits | None = None,
) -> SynthesisResult:
    """Speak each (text_id, text); check, resample to tts.sample_rate and encode each clip."""
    limits = limits or ClipLimits()
    clips: list[Clip] = []
    rejected: list[dict[str, Any]] = []
    with Progress(f"synthesize {source}", len(items), "texts", "s of audio") as progress:
        for text_id, text in items:
            reason = None
            try:
                native = engine.synthesize(text)
            except Exception as exc:  # one bad text must not stop the shard
                native, reason = np.zeros(0, np.float32), f"tts_error: {type(exc).__name__}: {exc}"
            reason = reason or check_clip(native, engine.sample_rate, text, limits)
            progress.update(1, native.size / engine.sample_rate if reason is None else 0.0)
            if reason is not None:
                rejected.append(
                    {
                        "text_id": text_id,
                        "source": source,
                        "reason": reason.split(":")[0],
                        "detail": reason,
                        "text": text,
                    }
                )
                continue
            samples = resample(native, engine.sample_rate, tts.sample_rate)
            clips.append(
                Clip(
                    text_id=text_id,
                    spoken_text=text,
                    audio_bytes=encode(samples, tts.sample_rate, audio_format),
                    audio_path=f"{_SAFE_NAME.sub('_', text_id)}.{audio_format}",
                    sampling_rate=tts.sample_rate,
                    duration_s=samples.size / tts.sample_rate,
                )
            )
    return SynthesisResult(clips, rejected)


def _audio_columns(clips: list[Clip], engine: TTSEngine) -> dict[str, Any]:
    return {
        "text_id": [c.text_id for c in clips],
        "audio": [{"bytes": c.audio_bytes, "path": c.audio_path} for c in clips],
        "sampling_rate": [c.sampling_rate for c in clips],
        "duration_s": [c.duration_s for c in clips],
        "tts_engine": [engine.name] * len(clips),
        "tts_voice": [engine.voice.name] * len(clips),
    }


def synthesize_probe_shard(
    probes_shard: Path,
    out_path: Path,
    quarantine_path: Path,
    engine: TTSEngine,
    tts: TTSSection,
    output: OutputSection,
) -> SynthesisResult:
    """Speak the prefix of every probe of one shard; the scorer reads these clips."""
    probes = read_table(probes_shard, tables.PROBES, columns=["text_id", "prefix_text"])
    items = list(
        zip(
            probes.column("text_id").to_pylist(),
            probes.column("prefix_text").to_pylist(),
            strict=True,
        )
    )
    result = synthesize_texts(items, engine, tts, output.audio_format, probes_shard.name)
    columns = _audio_columns(result.clips, engine)
    columns["spoken_text"] = [c.spoken_text for c in result.clips]
    write_table(pa.table(columns), out_path, tables.CLIPS)
    _write_quarantine("probe_tts", result, quarantine_path)
    return result


def synthesize_output_shard(
    selection: pa.Table,
    out_path: Path,
    quarantine_path: Path,
    engine: TTSEngine,
    tts: TTSSection,
    output: OutputSection,
) -> SynthesisResult:
    """Speak one slice of the selection and write it as a trainer-facing shard.

    The shard is written only when it holds at least one clip; every row of the
    slice is either in it or in the quarantine table.
    """
    items = list(
        zip(
            selection.column("text_id").to_pylist(),
            selection.column("text").to_pylist(),
            strict=True,
        )
    )
    result = synthesize_texts(items, engine, tts, output.audio_format, out_path.name)
    _write_quarantine("tts", result, quarantine_path)
    if not result.clips:
        return result
    keep = {c.text_id: i for i, c in enumerate(result.clips)}
    rows = np.array([i for i, t in enumerate(items) if t[0] in keep], dtype=np.int64)
    provenance = selection.take(pa.array(rows))
    columns = _audio_columns(result.clips, engine)
    for name in tables.SELECTION.names:
        if name != "text_id":
            columns[name] = provenance.column(name)
    write_table(pa.table(columns), out_path, tables.SHARD, row_group_size=256)
    return result


def _write_quarantine(stage: str, result: SynthesisResult, path: Path) -> None:
    if result.rejected:
        write_table(quarantine_table(stage, result.rejected), path, tables.QUARANTINE)
