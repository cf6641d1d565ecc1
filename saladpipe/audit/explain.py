"""Why a text was or was not selected, round by round, from what the run folder holds.

Everything comes from files the rounds wrote: the ledger and its round records, the
selection of each round, its cluster statistics, the `select` quarantine (excluded
texts, near-duplicates), the per-text gap estimates and the ingest quarantine. What
holds for every strategy (picked before, excluded, a near-duplicate) is said here; why
the round's strategy took the text or passed it over, its own `explain` says.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from saladpipe.audit.run import read_columns
from saladpipe.data_schemas import tables
from saladpipe.data_schemas.errors import SaladpipeError
from saladpipe.data_schemas.io import read_table
from saladpipe.data_schemas.layout import RunLayout
from saladpipe.models.vectors import EmbeddingLookup
from saladpipe.pipeline.ledger import STATUS_SYNTHESIZED, RoundRecord, finished_rounds, read_ledger
from saladpipe.pipeline.probe import load_pool
from saladpipe.selectors import TextInRound, VectorLookup, recorded_strategy


@dataclass(frozen=True)
class _Text:
    """The explained text's place in the pool."""

    row: int
    text_id: str
    text: str
    domain: str | None
    cluster: int


def explain(run_dir: Path, text_id: str) -> list[str]:
    """Lines that say, for every finished round, whether the text was picked and why."""
    layout = RunLayout(run_dir)
    rounds = finished_rounds(layout)
    if not rounds:
        raise SaladpipeError(
            f"{run_dir}: no finished round to explain (no {layout.ledger_round(0)})"
        )
    inputs = rounds[0].inputs
    pool = load_pool(inputs.paths(run_dir, "assignments"), inputs.paths(run_dir, "corpus"))
    ids = pool.column("text_id").combine_chunks()
    found = pc.index(ids, text_id).as_py()
    if found < 0:
        return _outside_pool(layout, text_id)
    row = pool.slice(found, 1).to_pylist()[0]
    text = _Text(found, text_id, row["text"], row["domain"], int(row["cluster"]))
    lines = [
        f"{text_id}: {_short(text.text)!r}" + (f" (domain {text.domain})" if text.domain else ""),
        f"cluster {text.cluster} of {rounds[0].config['cluster']['k']}",
    ]
    lines.extend(_probe_lines(run_dir, inputs.probes, text))
    for record in rounds:
        lines.extend(_round_lines(layout.for_round(record.round), record, pool, text))
    return lines


def _short(text: str, width: int = 100) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _outside_pool(layout: RunLayout, text_id: str) -> list[str]:
    for path in sorted(layout.quarantine_dir.glob("ingest-*.parquet")):
        table = pq.read_table(path, columns=["text_id", "reason", "detail", "source"])
        hits = table.filter(pc.equal(table.column("text_id"), pa.scalar(text_id))).to_pylist()
        if hits:
            hit = hits[0]
            return [
                f"{text_id}: never in the pool: quarantined at ingest ({hit['reason']}: "
                f"{hit['detail']}; source {hit['source']})"
            ]
    raise SaladpipeError(f"text id {text_id!r} is not in the corpus of run folder {layout.root}")


def _probe_lines(run_dir: Path, probe_shards: list[str], text: _Text) -> list[str]:
    for path in probe_shards:
        probes = read_table(run_dir / path, tables.PROBES, columns=["text_id"])
        if text.text_id in probes.column("text_id").to_pylist():
            return [f"it is one of the probes that measure cluster {text.cluster}'s gap"]
    return []


def _round_lines(layout: RunLayout, record: RoundRecord, pool: pa.Table, text: _Text) -> list[str]:
    r = layout.round_index
    strategy = recorded_strategy(record.config["select"])
    student = (record.student_id or "?").split("@")[0]
    head = (
        f"round {r} (strategy {strategy.describe()}, student {student}, "
        f"budget {record.budget_limit:g} {record.budget_unit})"
    )
    # Leniently: statistics of an older version lack the CER columns.
    stats = read_columns(layout.cluster_stats).to_pylist()[text.cluster]
    gap, gap_kind = _own_gap(layout, record, stats, text)
    cluster_line = (
        f"  cluster {text.cluster}: measured gap {_num(stats['gap_mean'])} "
        f"from {stats['probe_count']} probes, weighted as {stats['gap_used']:.4g}, "
        f"P(c) = {stats['probability']:.4g}, {stats['selected']} of its "
        f"{stats['eligible_count']} eligible texts picked"
    ) + _cer_words(stats)
    selection = read_table(layout.selection(r), tables.SELECTION)
    picked = selection.filter(
        pc.equal(selection.column("text_id"), pa.scalar(text.text_id))
    ).to_pylist()
    if picked:
        pick = picked[0]
        seen = _in_round(layout, record, selection, pool, stats, text, gap, pick)
        return [
            f"{head}: SELECTED at rank {pick['rank']} of {selection.num_rows}",
            cluster_line,
            f"  its draw probability {pick['probability']:.4g}; own gap {pick['gap_score']:.4g} "
            f"({gap_kind})",
            f"  {strategy.explain(seen)}",
            f"  {_fate(layout, r, text.text_id)}",
        ]
    earlier = read_ledger(layout, before=r)
    mine = earlier.filter(pc.equal(earlier.column("text_id"), pa.scalar(text.text_id))).to_pylist()
    if mine:
        return [f"{head}: not eligible: picked in round {mine[0]['selection_round']}"]
    skipped = _skipped(layout, text.text_id)
    if skipped is not None:
        return [f"{head}: not selected: {skipped}"]
    if stats["excluded_reason"]:
        return [f"{head}: not eligible: cluster excluded ({stats['excluded_reason']})"]
    if record.budget_spent == 0 or selection.num_rows == 0:
        why = "nothing was selected this round"
    else:
        why = strategy.explain(_in_round(layout, record, selection, pool, stats, text, gap))
    return [f"{head}: not selected", cluster_line, f"  own gap {gap:.4g} ({gap_kind}); {why}"]


def _cer_words(stats: dict[str, Any]) -> str:
    """The cluster's ASR character error rate, where the run measured any."""
    measured = stats.get("cer_measured")
    if measured is None:
        return ""
    if measured == 0:
        return "; no measured clip, so never excluded for its character error rate"
    return f"; mean character error rate {stats['cer_mean']:.3f} over {measured} measured texts"


def _in_round(
    layout: RunLayout,
    record: RoundRecord,
    selection: pa.Table,
    pool: pa.Table,
    stats: dict[str, Any],
    text: _Text,
    gap: float,
    pick: dict[str, Any] | None = None,
) -> TextInRound:
    """The text in this round, as its strategy's `explain` reads it."""
    ids = pool.column("text_id").combine_chunks()
    rows = pc.index_in(selection.column("text_id"), value_set=ids).to_numpy()
    return TextInRound(
        row=text.row,
        cluster=text.cluster,
        gap=gap,
        cluster_probability=float(stats["probability"]),
        rank=None if pick is None else int(pick["rank"]),
        probability=None if pick is None else float(pick["probability"]),
        picked_ids=tables.strings(selection.column("text_id")),
        picked_rows=np.asarray(rows, dtype=np.int64),
        picked_clusters=selection.column("cluster").to_numpy(),
        picked_gaps=selection.column("gap_score").to_numpy(),
        vectors=_vectors(layout.root, record, ids),
    )


def _vectors(root: Path, record: RoundRecord, ids: pa.Array) -> VectorLookup:
    """Embedding vectors of pool rows; the shards are opened on the first call only."""

    @functools.cache
    def lookup() -> EmbeddingLookup:
        return EmbeddingLookup(record.inputs.paths(root, "embeddings"), ids)

    return lambda rows: lookup()(rows)


def _num(value: float | None) -> str:
    return "none" if value is None else f"{value:.4g}"


def _own_gap(
    layout: RunLayout, record: RoundRecord, stats: dict[str, object], text: _Text
) -> tuple[float, str]:
    if record.gap_source == "text":
        for index in range(len(record.inputs.assignments)):
            path = layout.gap_estimates_shard(index)
            table = read_table(path, tables.GAP_ESTIMATES, columns=["text_id", "gap"])
            hit = table.filter(pc.equal(table.column("text_id"), pa.scalar(text.text_id)))
            if hit.num_rows:
                return float(hit.column("gap")[0].as_py()), "propagated from its nearest probes"
    measured = stats["gap_mean"]
    if isinstance(measured, float):
        return measured, "its cluster's gap"
    return float(str(stats["gap_used"])), "its cluster's gap (no probe scored: mean of the others)"


def _fate(layout: RunLayout, r: int, text_id: str) -> str:
    rows = pq.read_table(layout.ledger_texts(r))
    row = rows.filter(pc.equal(rows.column("text_id"), pa.scalar(text_id))).to_pylist()[0]
    if row["status"] == STATUS_SYNTHESIZED:
        return f"synthesized into {row['shard']} ({row['duration_s']:.2f} s)"
    # This round's TTS quarantine files: the name of shard 0's, any shard number.
    pattern = layout.quarantine("tts", 0).name.replace("00000.parquet", "[0-9]*.parquet")
    reason = _quarantined(layout.root, pattern, text_id)
    return f"TTS failed: {reason or 'see quarantine'}"


def _quarantined(root: Path, pattern: str, text_id: str) -> str | None:
    for path in sorted((root / "quarantine").glob(pattern)):
        table = pq.read_table(path, columns=["text_id", "reason", "detail"])
        hits = table.filter(pc.equal(table.column("text_id"), pa.scalar(text_id))).to_pylist()
        if hits:
            return f"{hits[0]['reason']}: {hits[0]['detail']}"
    return None


def _skipped(layout: RunLayout, text_id: str) -> str | None:
    path = layout.quarantine("select")
    return _quarantined(layout.root, path.name, text_id) if path.is_file() else None
