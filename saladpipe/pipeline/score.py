"""Score: the student's distillation loss on each probe, from its spoken prefix.

Reads one probe shard and the clips of its prefixes, and writes one scores shard.
A probe whose prefix could not be synthesized is written with status `no_audio`
(its clip is in the probe_tts quarantine), one whose clip cannot be decoded with
`invalid_audio`; every probe appears in the scores.

A scores shard carries in its Parquet metadata the key of what it was computed
from: the checksums of its probe and clip shards, the teacher and student ids and
the scoring settings. A re-run finds a shard whose key matches and keeps it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import soundfile as sf

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.config import ModelsSection
from saladpipe.data_schemas.io import read_table, sha256_file, write_table
from saladpipe.pipeline.progress import Progress
from saladpipe.pipeline.scoring import STATUS_INVALID_AUDIO, DistillationScorer, ScoreItem
from saladpipe.tts.audio import decode

INPUTS_KEY = b"saladpipe.inputs_key"
# Bumped whenever a change of the scoring code changes what it writes.
SCORER_VERSION = 2
STATUS_NO_AUDIO = "no_audio"


def scoring_settings(models: ModelsSection) -> dict[str, Any]:
    """The settings that change scores (batching does not: scores are batch-invariant)."""
    from saladpipe.pipeline.models.loading import resolve_device, resolve_dtype

    device = resolve_device(models.device)
    return {
        "version": SCORER_VERSION,
        "device": device.type,
        "dtype": str(resolve_dtype(models.dtype, device)),
        "max_tokens": models.max_tokens,
        "forgetting": models.forgetting,
    }


def inputs_key(
    probes_shard: Path,
    clips_shard: Path,
    teacher_id: str,
    student_id: str,
    settings: dict[str, Any],
) -> str:
    """sha256 of everything a scores shard is computed from."""
    payload = {
        "probes": sha256_file(probes_shard),
        "clips": sha256_file(clips_shard),
        "teacher": teacher_id,
        "student": student_id,
        "settings": settings,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def is_finished(out_path: Path, key: str) -> bool:
    """True when `out_path` is a scores shard computed from exactly these inputs."""
    if not out_path.is_file():
        return False
    try:
        metadata = pq.read_schema(out_path).metadata or {}
    except (OSError, pa.ArrowInvalid):
        return False
    return metadata.get(INPUTS_KEY) == key.encode()


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
    probes_shard: Path, clips_shard: Path, out_path: Path, scorer: DistillationScorer, key: str
) -> pa.Table:
    """Score every probe of one shard; returns the scores table it wrote under `key`."""
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
    schema = tables.SCORES.with_metadata(
        {**(tables.SCORES.metadata or {}), INPUTS_KEY: key.encode()}
    )
    table = pa.Table.from_pylist(rows, schema=schema)
    write_table(table, out_path, schema)
    return table


def score_shard_once(
    probes_shard: Path,
    clips_shard: Path,
    out_path: Path,
    model_ids: tuple[str, str],
    settings: dict[str, Any],
    load_scorer: Callable[[], DistillationScorer],
) -> bool:
    """Score one shard unless a finished one from the same inputs is there; True if scored.

    `model_ids` are the ids known before loading (see `loading.model_id`), so a
    finished shard is found without loading any model.
    """
    if is_finished(out_path, inputs_key(probes_shard, clips_shard, *model_ids, settings)):
        return False
    scorer = load_scorer()
    ids = (scorer.teacher_id, scorer.student_id)
    score_shard(
        probes_shard,
        clips_shard,
        out_path,
        scorer,
        inputs_key(probes_shard, clips_shard, *ids, settings),
    )
    return True
