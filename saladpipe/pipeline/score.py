"""Score: the student's distillation loss on each probe, from its spoken prefix.

Reads one probe shard and the clips of its prefixes, and writes one scores shard.
A probe whose prefix could not be synthesized is written with status `no_audio`
(its clip is in the probe_tts quarantine); every probe appears in the scores.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.io import read_table, write_table
from saladpipe.pipeline.progress import Progress
from saladpipe.pipeline.scoring import DistillationScorer, ScoreItem
from saladpipe.tts.audio import decode


def score_shard(
    probes_shard: Path, clips_shard: Path, out_path: Path, scorer: DistillationScorer
) -> pa.Table:
    """Score every probe of one shard; returns the scores table it wrote."""
    probes = read_table(probes_shard, tables.PROBES).to_pylist()
    clips = {row["text_id"]: row for row in read_table(clips_shard, tables.CLIPS).to_pylist()}
    items: list[ScoreItem] = []
    for probe in probes:
        clip = clips.get(probe["text_id"])
        if clip is None:
            continue
        samples, rate = decode(clip["audio"]["bytes"])
        items.append(
            ScoreItem(
                probe["text_id"], probe["prefix_text"], probe["continuation_text"], samples, rate
            )
        )
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
                "n_tokens": 0 if result is None else result.n_tokens,
                "status": "no_audio" if result is None else result.status,
                "teacher_id": scorer.teacher_id,
                "student_id": scorer.student_id,
            }
        )
    table = pa.Table.from_pylist(rows, schema=tables.SCORES)
    write_table(table, out_path, tables.SCORES)
    return table
