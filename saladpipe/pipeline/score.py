"""Score: the student's distillation loss on each probe, from its spoken prefix.

Reads one probe shard and the clips of its prefixes, and writes one scores shard.
A probe whose prefix could not be synthesized is written with status `no_audio`
(its clip is in the probe_tts quarantine), one whose clip cannot be decoded with
`invalid_audio`; every probe appears in the scores.

What a scores shard is computed from (its probe and clip shards, the teacher and
student ids, `scoring_settings`) is the key of its task, so a re-run keeps a shard
whose inputs are unchanged (flows/completion.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import soundfile as sf

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.config import ModelsSection
from saladpipe.data_schemas.io import read_table, write_table
from saladpipe.models.distillation import STATUS_INVALID_AUDIO, DistillationScorer, ScoreItem
from saladpipe.progress import Progress
from saladpipe.tts.audio import decode

# Bumped whenever a change of the scoring code changes what it writes.
SCORER_VERSION = 2
STATUS_NO_AUDIO = "no_audio"


def scoring_settings(models: ModelsSection) -> dict[str, Any]:
    """The settings that change scores, resolved on this machine (`auto` is another device
    on another machine); batching is not one: scores are batch-invariant."""
    from saladpipe.models.loading import resolve_device, resolve_dtype

    device = resolve_device(models.device)
    return {
        "version": SCORER_VERSION,
        "device": device.type,
        "dtype": str(resolve_dtype(models.dtype, device)),
        "max_tokens": models.max_tokens,
        "forgetting": models.forgetting,
    }


def _item(probe: dict[str, Any], clip: dict[str, Any]) -> ScoreItem | None:
    """The probe with its decoded prefix clip; None when the clip cannot be decoded."""
    try:
        samples, rate = decode(clip["audio"]["bytes"])
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError):
        return None
    return ScoreItem(
        probe["text_id"], probe["prefix_text"], probe["continuation_text"], samples, rate
    )


def _list(values: np.ndarray | None) -> list[float] | None:
    return None if values is None else values.astype(np.float32).tolist()


def score_shard(
    probes_shard: Path, clips_shard: Path, out_path: Path, scorer: DistillationScorer
) -> pa.Table:
    """Score every probe of one shard; returns the scores table it wrote."""
    probes = read_table(probes_shard, tables.PROBES).to_pylist()
    clips = {row["text_id"]: row for row in read_table(clips_shard, tables.CLIPS).to_pylist()}
    items: list[ScoreItem] = []
    statuses: dict[str, str] = {}
    for probe in probes:
        clip = clips.get(probe["text_id"])
        item = None if clip is None else _item(probe, clip)
        if item is None:
            statuses[probe["text_id"]] = STATUS_NO_AUDIO if clip is None else STATUS_INVALID_AUDIO
        else:
            items.append(item)
    with Progress(f"score {probes_shard.name}", len(items), "probes") as progress:
        results = {r.text_id: r for r in scorer.score(items)}
        progress.update(len(items))
    rows = []
    for probe in probes:
        result = results.get(probe["text_id"])
        rows.append(
            {
                "text_id": probe["text_id"],
                "cluster": probe["cluster"],
                "misalignment": None if result is None else result.misalignment,
                "forgetting": None if result is None else result.forgetting,
                "n_tokens": 0 if result is None else result.n_tokens,
                "truncated": False if result is None else result.truncated,
                "status": statuses[probe["text_id"]] if result is None else result.status,
                "teacher_id": scorer.teacher_id,
                "student_id": scorer.student_id,
                "token_ids": None if result is None or not result.n_tokens else result.token_ids,
                "token_kl": None if result is None else _list(result.token_kl),
                "token_forgetting": None if result is None else _list(result.token_forgetting),
            }
        )
    table = pa.Table.from_pylist(rows, schema=tables.SCORES)
    write_table(table, out_path, tables.SCORES)
    return table
