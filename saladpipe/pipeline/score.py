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
import pyarrow.parquet as pq
import soundfile as sf

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.config import ModelsSection
from saladpipe.data_schemas.io import read_table, write_table
from saladpipe.models.builtin import builtin_dirs
from saladpipe.models.distillation import STATUS_INVALID_AUDIO, DistillationScorer, ScoreItem
from saladpipe.models.loading import BuiltinDirs
from saladpipe.pipeline.ingest import corpus_texts
from saladpipe.pipeline.stage import Resource, Stage
from saladpipe.progress import Progress
from saladpipe.tts.audio import decode

STATUS_NO_AUDIO = "no_audio"


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
) -> Path:
    """Score every probe of one shard into `out_path`."""
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
    return write_table(pa.Table.from_pylist(rows, schema=tables.SCORES), out_path, tables.SCORES)


def scoring_counts(probe_shards: list[Path], score_shards: list[Path]) -> dict[str, int]:
    """How many probes were drawn and how many got a score."""
    probes = sum(pq.read_metadata(p).num_rows for p in probe_shards)
    scored = 0
    for path in score_shards:
        column = pq.read_table(path, columns=["misalignment"]).column("misalignment")
        scored += len(column) - column.null_count
    return {"probes": probes, "probes_scored": scored}


def scoring_model_ids(score_shards: list[Path]) -> dict[str, str]:
    """Teacher and student ids as the scores recorded them."""
    for path in score_shards:
        table = pq.read_table(path, columns=["teacher_id", "student_id"])
        if table.num_rows:
            return {
                "teacher": table["teacher_id"][0].as_py(),
                "student": table["student_id"][0].as_py(),
            }
    return {}


def builtin_model_dirs(
    models: ModelsSection,
    corpus_shards: list[Path],
    seed: int,
    cache_root: Path,
    trained: BuiltinDirs,
) -> BuiltinDirs:
    """The folders of the builtin models the config names: placeholders built from the
    corpus on first use, the trained ones as their build left them (`models/builtin.py`)."""
    dirs = builtin_dirs(
        models, lambda: corpus_texts(corpus_shards), seed, cache_root, dict(trained)
    )
    return tuple(sorted(dirs.items()))


BUILTIN_MODELS = Stage(
    "build-builtin-models",
    builtin_model_dirs,
    reads=("corpus_shards", "cache_root", "trained"),
)
SCORE = Stage(
    "score-probes",
    score_shard,
    reads=("probes_shard", "clips_shard"),
    keeps=("out_path",),
    needs=("scorer",),
    resource=Resource.SCORING,
)
