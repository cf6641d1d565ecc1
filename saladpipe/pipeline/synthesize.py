"""Synthesize: speak texts with the run's voices and write clips, shards and quarantine.

Shared by the probe clips (the spoken prefixes that scoring needs) and the output
shards (the selected texts). A text whose synthesis fails (after its retries) or
whose clip fails a check goes to quarantine with the reason; every input row is
either in the clips/shard or in the quarantine table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pyarrow as pa

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.config import OutputSection
from saladpipe.data_schemas.io import read_table, write_table
from saladpipe.data_schemas.quarantine import quarantine_table
from saladpipe.data_schemas.shard_writer import DEFAULT_LIMITS, ShardLimits, ShardWriter
from saladpipe.pipeline.select import read_selection
from saladpipe.pipeline.stage import Resource, Stage
from saladpipe.progress import Progress, logger
from saladpipe.tts import Rejected, SpeechService, SpokenText
from saladpipe.tts.render import Outcome, Spoken

# Characters allowed in the file name a clip carries in its `path` field.
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class SynthesisResult:
    """Good clips in input order, the rejected texts with reasons, the files written."""

    clips: list[SpokenText]
    rejected: list[Rejected]
    paths: tuple[Path, ...] = ()

    @property
    def audio_seconds(self) -> float:
        return float(sum(c.duration_s for c in self.clips))


def synthesize_texts(
    items: list[tuple[str, str]], speech: SpeechService, source: str
) -> SynthesisResult:
    """Speak each (text_id, text) with the run's voices; report progress as clips arrive."""
    with Progress(f"synthesize {source}", len(items), "texts", "s of audio") as progress:

        def advance(outcome: Outcome) -> None:
            progress.update(1, outcome.duration_s if isinstance(outcome, Spoken) else 0.0)

        results = speech.speak(items, advance)
    return SynthesisResult(
        [r for r in results if isinstance(r, SpokenText)],
        [r for r in results if isinstance(r, Rejected)],
    )


def _audio_columns(clips: list[SpokenText], audio_format: str) -> dict[str, Any]:
    return {
        "text_id": [c.text_id for c in clips],
        "normalized_text": [c.normalized_text for c in clips],
        "audio": [
            {"bytes": c.audio, "path": f"{_SAFE_NAME.sub('_', c.text_id)}.{audio_format}"}
            for c in clips
        ],
        "sampling_rate": [c.sampling_rate for c in clips],
        "duration_s": [c.duration_s for c in clips],
        "tts_engine": [c.engine for c in clips],
        "tts_voice": [c.voice for c in clips],
        "tts_license": [c.license for c in clips],
        "asr_cer": pa.array([c.asr_cer for c in clips], pa.float32()),
    }


def synthesize_probe_shard(
    probes_shard: Path, out_path: Path, quarantine_path: Path, speech: SpeechService
) -> Path:
    """Speak the prefix of every probe of one shard into `out_path` (the clips the scorer
    reads); a prefix without a clip goes to `quarantine_path` with the reason."""
    probes = read_table(probes_shard, tables.PROBES, columns=["text_id", "prefix_text"])
    items = list(
        zip(
            tables.strings(probes.column("text_id")),
            tables.strings(probes.column("prefix_text")),
            strict=True,
        )
    )
    result = synthesize_texts(items, speech, probes_shard.name)
    columns = _audio_columns(result.clips, speech.audio_format)
    columns["spoken_text"] = [c.text for c in result.clips]
    write_table(pa.table(columns), out_path, tables.CLIPS)
    _write_quarantine("probe_tts", result, quarantine_path, probes_shard.name)
    return out_path


def synthesize_output_shard(
    selection: pa.Table,
    out_path: Path,
    quarantine_path: Path,
    speech: SpeechService,
    limits: ShardLimits = DEFAULT_LIMITS,
) -> SynthesisResult:
    """Speak one slice of the selection and write it as trainer-facing shards.

    Shards are written only when there is at least one clip (`out_path`, then
    `<stem>-001.parquet`... past `limits.max_bytes`); every row of the slice is either
    in them or in the quarantine table.
    """
    items = _id_text_pairs(selection)
    result = synthesize_texts(items, speech, out_path.name)
    _write_quarantine("tts", result, quarantine_path, out_path.name)
    if not result.clips:
        write_shard(tables.SHARD.empty_table(), out_path, limits)  # clears an earlier attempt's
        return result
    kept = {c.text_id for c in result.clips}
    rows = [i for i, (text_id, _) in enumerate(items) if text_id in kept]
    provenance = selection.take(pa.array(rows, pa.int64()))
    columns = _audio_columns(result.clips, speech.audio_format)
    for name in tables.SELECTION.names:
        if name != "text_id":
            columns[name] = provenance.column(name)
    return replace(result, paths=tuple(write_shard(pa.table(columns), out_path, limits)))


def synthesize_selection_slice(
    selection_path: Path,
    start: int,
    stop: int,
    output: OutputSection,
    out_path: Path,
    quarantine_path: Path,
    speech: SpeechService,
) -> tuple[list[Path], int]:
    """The output stage for rows [start, stop) of the round's selection: the shard files
    it wrote and how many clips they hold."""
    selection = read_selection(selection_path).slice(start, stop - start)
    limits = ShardLimits.from_mb(output.max_shard_mb, output.row_group_mb)
    result = synthesize_output_shard(selection, out_path, quarantine_path, speech, limits)
    logger.info(
        "%s: %d clips, %.1f s of audio, %d quarantined",
        out_path.name,
        len(result.clips),
        result.audio_seconds,
        len(result.rejected),
    )
    return list(result.paths), len(result.clips)


def quarantine_failed_slice(arguments: dict[str, Any], detail: str) -> tuple[list[Path], int]:
    """An output stage that kept failing: every row of its slice goes to quarantine
    (`task_failed`, with the error as detail) and whatever an attempt left of its shard
    goes; the run goes on without them, and a resumed run tries them again."""
    start, stop = arguments["start"], arguments["stop"]
    selection = read_selection(arguments["selection_path"]).slice(start, stop - start)
    out_path: Path = arguments["out_path"]
    write_shard(tables.SHARD.empty_table(), out_path, DEFAULT_LIMITS)
    rejected = [
        Rejected(text_id, text, "task_failed", detail)
        for text_id, text in _id_text_pairs(selection)
    ]
    _write_quarantine(
        "tts", SynthesisResult([], rejected), arguments["quarantine_path"], out_path.name
    )
    return [], 0


def _id_text_pairs(selection: pa.Table) -> list[tuple[str, str]]:
    return list(
        zip(
            tables.strings(selection.column("text_id")),
            tables.strings(selection.column("text")),
            strict=True,
        )
    )


def write_shard(table: pa.Table, out_path: Path, limits: ShardLimits) -> list[Path]:
    """The one place output shards are written: conformed to SHARD, sized, atomic."""
    stem = out_path.name.removesuffix(".parquet")
    with ShardWriter(
        out_path.parent, stem, tables.SHARD, limits.max_bytes, limits.row_group_bytes
    ) as writer:
        writer.write(table)
    return writer.paths


def _write_quarantine(stage: str, result: SynthesisResult, path: Path, source: str) -> None:
    if result.rejected:
        records = [
            {
                "text_id": r.text_id,
                "source": source,
                "reason": r.reason,
                "detail": r.detail,
                "text": r.text,
            }
            for r in result.rejected
        ]
        write_table(quarantine_table(stage, records), path, tables.QUARANTINE)
    else:
        path.unlink(missing_ok=True)  # an earlier attempt's, which this one supersedes


SPEAK_PROBES = Stage(
    "synthesize-probes",
    synthesize_probe_shard,
    reads=("probes_shard",),
    keeps=("out_path", "quarantine_path"),
    needs=("speech",),
    resource=Resource.TTS,
)
SPEAK_SELECTION = Stage(
    "synthesize-shard",
    synthesize_selection_slice,
    reads=("selection_path",),
    keeps=("out_path", "quarantine_path"),
    needs=("speech",),
    resource=Resource.TTS,
    give_up=quarantine_failed_slice,
)
