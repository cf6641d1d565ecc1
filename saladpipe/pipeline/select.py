"""Select: the pool with its gaps, the configured strategy under the budget, a reason per pick.

Reads the pool (corpus + assignments), this round's probe scores, per-text gap
estimates when propagation wrote them, the probe clips (their durations fit the speech
rate; their ASR character error rates, kept or quarantined, feed the CER exclusions),
the ledger of earlier rounds and the configured exclusions. Writes the selection
(SELECTION: every pick with its cluster, gaps, probability and rank), the per-cluster
statistics (CLUSTER_STATS, with each cluster's mean CER) and every text it skipped with
the reason (quarantine, stage `select`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.config import ClusterSection, ExcludeSection, SelectSection
from saladpipe.data_schemas.errors import ConfigError, SchemaError
from saladpipe.data_schemas.io import read_table, write_table
from saladpipe.data_schemas.layout import RunLayout
from saladpipe.data_schemas.quarantine import quarantine_table
from saladpipe.models.vectors import EmbeddingLookup
from saladpipe.pipeline.ledger import STATUS_SYNTHESIZED, ledger_table
from saladpipe.pipeline.probe import load_pool
from saladpipe.pipeline.stage import Stage
from saladpipe.progress import logger
from saladpipe.selectors import (
    Budget,
    ClusterCer,
    Exclusions,
    NearDuplicates,
    Picks,
    Pool,
    SelectionError,
    SpeechRate,
    create_strategy,
    explored_gaps,
    find_exclusions,
    fit_speech_rate,
)
from saladpipe.tts.asr import ASR_REJECTED, rejected_cer

#: Token count of each text in the teacher's tokenizer.
TokenCounter = Callable[[list[str]], list[int]]


def token_counter(tokenizer: Any) -> TokenCounter:
    """Count tokens with a Hugging Face tokenizer (no special tokens: the text's own)."""

    def count(texts: list[str]) -> list[int]:
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]

    return count


@dataclass
class ClusterGaps:
    """Gap per cluster from its probes; clusters with no usable probe score get the mean."""

    counts: np.ndarray  # texts in the pool per cluster
    probe_count: np.ndarray  # probes scored per cluster
    gap_mean: np.ndarray  # NaN where no probe was scored
    gap_std: np.ndarray
    notes: list[str] = field(default_factory=list)

    def filled(self) -> np.ndarray:
        """Gap estimates used for selection: unscored clusters take the mean of scored ones."""
        return np.where(np.isnan(self.gap_mean), np.nanmean(self.gap_mean), self.gap_mean)


def cluster_gaps(pool_clusters: np.ndarray, k: int, scores: pa.Table) -> ClusterGaps:
    """Mean and spread of the probe misalignment of each cluster."""
    usable = scores.filter(pc.is_valid(scores.column("misalignment")))
    probe_clusters = usable.column("cluster").to_numpy()
    values = usable.column("misalignment").to_numpy()
    probe_count = np.bincount(probe_clusters, minlength=k)
    sums = np.bincount(probe_clusters, weights=values, minlength=k)
    squares = np.bincount(probe_clusters, weights=values**2, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(probe_count > 0, sums / probe_count, np.nan)
        var = np.where(
            probe_count > 1, (squares - probe_count * mean**2) / (probe_count - 1), np.nan
        )
    gaps = ClusterGaps(
        np.bincount(pool_clusters, minlength=k), probe_count, mean, np.sqrt(np.maximum(var, 0.0))
    )
    if not np.any(probe_count):
        raise SelectionError("no probe could be scored, so no cluster has a gap estimate")
    unscored = np.flatnonzero(probe_count == 0)
    if unscored.size:
        gaps.notes.append(
            f"clusters {unscored.tolist()} have no scored probe; "
            "they use the mean gap of the others"
        )
    return gaps


@dataclass(frozen=True)
class SelectInputs:
    """The files a round selects from: the pool, this round's scores and per-text gap
    estimates (none: every text carries its cluster's gap), the probe clips and the probe
    clips' quarantine (those absent hold no rejected clip), and the ledger tables of
    earlier rounds."""

    corpus: list[Path]
    assignments: list[Path]
    embeddings: list[Path]
    scores: list[Path]
    clips: list[Path]
    estimates: list[Path] = field(default_factory=list)
    ledger: list[Path] = field(default_factory=list)
    probe_quarantine: list[Path] = field(default_factory=list)


@dataclass(frozen=True)
class SelectOutcome:
    """What a round picked, what it spent, and the notes for the manifest."""

    selected: int
    spent: float
    unit: str
    limit: float
    gap_source: str  # "text" (propagated estimates) or "cluster"
    speech_rate: SpeechRate
    notes: list[str]
    counts: dict[str, int]
    files: tuple[Path, ...] = ()  # what it wrote: the selection, cluster statistics, skips


def text_gaps(paths: list[Path], text_ids: pa.Array) -> tuple[np.ndarray | None, str]:
    """Per-text gap estimates of this round, when propagation wrote them for every shard."""
    if not paths or not all(p.is_file() for p in paths):
        return None, (
            "no per-text gap estimates for this round: every text carries its cluster's gap"
        )
    table = pa.concat_tables(
        [read_table(p, tables.GAP_ESTIMATES, columns=["text_id", "gap"]) for p in paths]
    )
    position = pc.index_in(text_ids, value_set=table.column("text_id").combine_chunks())
    if position.null_count:
        missing = text_ids.filter(pc.is_null(position))[0].as_py()
        raise SchemaError(f"{paths[0].parent}: no gap estimate for pool text {missing!r}")
    gaps = table.column("gap").to_numpy()[position.to_numpy(zero_copy_only=False)]
    return np.asarray(gaps, dtype=np.float64), "per-text gap estimates from propagation"


def speech_rate(clips: list[Path], ledger: pa.Table) -> SpeechRate:
    """Seconds per character, fitted on the probe clips and every clip earlier rounds made."""
    chars: list[np.ndarray] = []
    seconds: list[np.ndarray] = []
    for path in clips:
        table = read_table(path, tables.CLIPS, columns=["spoken_text", "duration_s"])
        chars.append(pc.utf8_length(table.column("spoken_text")).to_numpy())
        seconds.append(table.column("duration_s").to_numpy())
    made = ledger.filter(pc.equal(ledger.column("status"), pa.scalar(STATUS_SYNTHESIZED)))
    chars.append(made.column("n_chars").to_numpy())
    seconds.append(made.column("duration_s").to_numpy())
    return fit_speech_rate(np.concatenate(chars), np.concatenate(seconds))


def make_budget(
    cfg: SelectSection, texts: pa.ChunkedArray, rate: SpeechRate, tokens: TokenCounter | None
) -> Budget:
    """The round's budget in its configured unit, with each text's cost in that unit."""
    if cfg.budget_unit == "texts":
        return Budget(cfg.budget_texts, "texts")
    if cfg.budget_unit == "audio_hours":
        n_chars = pc.utf8_length(texts).to_numpy()
        return Budget(
            cfg.budget_audio_hours, "audio hours", lambda rows: rate.seconds(n_chars[rows]) / 3600
        )
    if tokens is None:
        raise ConfigError("config error: select.budget_unit: tokens needs the teacher's tokenizer")
    counter = tokens
    return Budget(
        cfg.budget_tokens,
        "tokens",
        lambda rows: np.asarray(counter(tables.strings(texts.take(pa.array(rows)))), np.float64),
    )


def probe_cer(clips: list[Path], quarantine: list[Path]) -> pa.Table:
    """`text_id` and `cer` of every probe clip the ASR check measured: the kept clips'
    `asr_cer`, and the clips it quarantined for their CER (the worst; leaving them out
    would let a cluster whose clips all fail look unmeasured)."""
    ids: list[str] = []
    cer: list[float] = []
    for path in clips:
        kept = read_table(path, tables.CLIPS, columns=["text_id", "asr_cer"]).drop_null()
        ids += tables.strings(kept.column("text_id"))
        cer += tables.floats(kept.column("asr_cer"))
    for path in quarantine:
        if not path.is_file():
            continue
        rejected = read_table(path, tables.QUARANTINE, columns=["text_id", "reason", "detail"])
        for row in rejected.to_pylist():
            value = rejected_cer(row["detail"] or "") if row["reason"] == ASR_REJECTED else None
            if value is not None and row["text_id"] is not None:
                ids.append(row["text_id"])
                cer.append(value)
    return pa.table({"text_id": pa.array(ids, pa.string()), "cer": pa.array(cer, pa.float64())})


def find_configured_exclusions(
    cfg: ExcludeSection, text_ids: pa.Array, clusters: np.ndarray, k: int, probes: pa.Table
) -> Exclusions:
    """Rows and clusters the config excludes: named ones and those failing the ASR check,
    measured on the probe clips (`probe_cer`) and in `asr_cer_table`; a text in both
    counts with the worse."""
    named = list(cfg.texts)
    if cfg.texts_file is not None:
        lines = cfg.texts_file.read_text(encoding="utf-8").splitlines()
        named.extend(line.strip() for line in lines if line.strip())
    named_rows = _rows_of(text_ids, pa.array(named, pa.string()))
    measured = [probes]
    if cfg.asr_cer_table is not None:
        measured.append(_read_cer(cfg.asr_cer_table).select(["text_id", "cer"]))
    cer_table = pa.concat_tables(measured)
    cer_rows = _rows_of(text_ids, cer_table.column("text_id").combine_chunks())
    known = cer_rows >= 0
    return find_exclusions(
        clusters,
        k,
        named_rows=named_rows[named_rows >= 0],
        named_clusters=cfg.clusters,
        cer_rows=cer_rows[known],
        cer=cer_table.column("cer").to_numpy()[known],
        max_cer=cfg.max_cer,
        max_cluster_cer=cfg.max_cluster_cer,
    )


def _read_cer(path: Path) -> pa.Table:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise ConfigError(f"config error: select.exclude.asr_cer_table: {path}: {exc}") from None
    for name, kind in (("text_id", pa.string()), ("cer", pa.float64())):
        if name not in table.column_names:
            raise ConfigError(
                f"config error: select.exclude.asr_cer_table: {path} has no {name!r} column"
            )
        try:
            table = table.set_column(
                table.column_names.index(name), name, table.column(name).cast(kind)
            )
        except pa.ArrowInvalid as exc:
            raise ConfigError(
                f"config error: select.exclude.asr_cer_table: {path}: column {name!r}: {exc}"
            ) from None
    if table.column("cer").null_count:
        raise ConfigError(f"config error: select.exclude.asr_cer_table: {path}: null cer values")
    return table


def _rows_of(text_ids: pa.Array, wanted: pa.Array) -> np.ndarray:
    """Pool row of each wanted id, -1 where the pool does not hold it."""
    position = pc.index_in(wanted, value_set=text_ids)
    return np.asarray(position.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)


def select_round(
    inputs: SelectInputs,
    select: SelectSection,
    cluster: ClusterSection,
    seed: int,
    layout: RunLayout,
    tokenizer: Any | None = None,
) -> SelectOutcome:
    """Pick this round's texts; write the selection, the cluster statistics and the skips.
    `tokenizer` (the teacher's) counts a budget in tokens."""
    cfg, k, round_index = select, cluster.k, layout.round_index
    strategy = create_strategy(cfg)
    table = load_pool(inputs.assignments, inputs.corpus)
    text_ids = table.column("text_id").combine_chunks()
    clusters = table.column("cluster").to_numpy().astype(np.int64)
    scores = pa.concat_tables([read_table(p, tables.SCORES) for p in inputs.scores])
    gaps = cluster_gaps(clusters, k, scores)
    notes = list(gaps.notes)
    measured = gaps.filled()
    gap_used = explored_gaps(
        gaps.gap_mean,
        gaps.gap_std,
        gaps.probe_count,
        cfg.exploration,
        cfg.exploration_weight,
        np.random.default_rng([seed, round_index, 1]),
    )
    own_gap, gap_note = text_gaps(inputs.estimates, text_ids)
    notes.append(gap_note)

    ledger = ledger_table(inputs.ledger)
    earlier = pc.is_in(text_ids, value_set=ledger.column("text_id").combine_chunks())
    earlier_mask = np.asarray(earlier.to_numpy(zero_copy_only=False), dtype=bool)
    probes = probe_cer(inputs.clips, inputs.probe_quarantine)
    exclusions = find_configured_exclusions(cfg.exclude, text_ids, clusters, k, probes)
    eligible = ~earlier_mask & exclusions.eligible(clusters)

    needs_vectors = strategy.needs_vectors or cfg.near_duplicate_threshold is not None
    lookup = EmbeddingLookup(inputs.embeddings, text_ids) if needs_vectors else None
    pool = Pool(clusters, gap_used, own_gap, eligible, lookup)
    rate = speech_rate(inputs.clips, ledger)
    tokens = None if tokenizer is None else token_counter(tokenizer)
    budget = make_budget(cfg, table.column("text"), rate, tokens)
    dedup = None
    if cfg.near_duplicate_threshold is not None and lookup is not None:
        dedup = NearDuplicates(cfg.near_duplicate_threshold, lookup, np.flatnonzero(earlier_mask))
    picks = strategy.select(pool, budget, np.random.default_rng([seed, round_index]), dedup)

    own = own_gap if own_gap is not None else measured[clusters]
    files = [
        _write_selection(layout, table, picks, measured, own, strategy.name),
        _write_cluster_stats(layout, gaps, pool, picks, gap_used, exclusions),
    ]
    skipped = _write_skipped(layout, table, exclusions, picks, earlier_mask, cfg)
    if skipped["excluded"] or skipped["near_duplicate"]:
        files.append(layout.quarantine("select"))
    notes.extend(_pool_notes(gaps, pool, exclusions, int(earlier_mask.sum())))
    notes.extend(picks.notes)
    notes.append(f"round {round_index}: spent {picks.spent:.6g} of {budget.limit:g} {budget.unit}")
    if cfg.budget_unit == "audio_hours":
        source = (
            f"fitted on {rate.samples} clips" if rate.samples else "default, nothing spoken yet"
        )
        notes.append(
            f"audio estimated as {rate.intercept_s:.3f} s + {rate.per_char_s:.4f} s per "
            f"character ({source})"
        )
    counts = gaps.counts
    logger.info(
        "round %d: %d texts selected (%.6g of %g %s); cluster sizes %d to %d",
        round_index,
        picks.indices.size,
        picks.spent,
        budget.limit,
        budget.unit,
        counts.min(),
        counts.max(),
    )
    return SelectOutcome(
        selected=int(picks.indices.size),
        spent=picks.spent,
        unit=budget.unit,
        limit=float(budget.limit),
        gap_source="text" if own_gap is not None else "cluster",
        speech_rate=rate,
        notes=notes,
        counts={
            "selected": int(picks.indices.size),
            "eligible": int(eligible.sum()),
            "ledger_texts": int(earlier_mask.sum()),
            "excluded_texts": int(skipped.get("excluded", 0)),
            "near_duplicates": int(picks.duplicates.size),
            "cluster_size_min": int(counts.min()),
            "cluster_size_max": int(counts.max()),
        },
        files=tuple(files),
    )


def _write_selection(
    layout: RunLayout,
    table: pa.Table,
    picks: Picks,
    measured: np.ndarray,
    own_gap: np.ndarray,
    strategy: str,
) -> Path:
    rows = picks.indices
    chosen = table.take(pa.array(rows))
    picked_clusters = table.column("cluster").to_numpy()[rows]
    selection = pa.table(
        {
            "text_id": chosen.column("text_id"),
            "text": chosen.column("text"),
            "domain": chosen.column("domain"),
            "cluster": pa.array(picked_clusters.astype(np.int32)),
            "cluster_gap": pa.array(measured[picked_clusters]),
            "gap_score": pa.array(own_gap[rows]),
            "selection_round": pa.array(np.full(rows.size, layout.round_index, np.int32)),
            "strategy": pa.array([strategy] * rows.size, pa.string()),
            "probability": pa.array(picks.probability),
            "rank": pa.array(np.arange(rows.size, dtype=np.int64)),
        }
    )
    return write_table(selection, layout.selection(layout.round_index), tables.SELECTION)


def _write_cluster_stats(
    layout: RunLayout,
    gaps: ClusterGaps,
    pool: Pool,
    picks: Picks,
    gap_used: np.ndarray,
    exclusions: Exclusions,
) -> Path:
    k = pool.num_clusters
    stats = pa.table(
        {
            "cluster": pa.array(np.arange(k, dtype=np.int32)),
            "pool_count": pa.array(gaps.counts.astype(np.int64)),
            "pool_share": pa.array(gaps.counts / max(1, gaps.counts.sum())),
            "probe_count": pa.array(gaps.probe_count.astype(np.int32)),
            "gap_mean": pa.array(gaps.gap_mean, from_pandas=True),
            "gap_std": pa.array(gaps.gap_std, from_pandas=True),
            "probability": pa.array(picks.cluster_probability),
            "eligible_count": pa.array(pool.eligible_counts.astype(np.int64)),
            "gap_used": pa.array(gap_used.astype(np.float64)),
            "selected": pa.array(
                np.bincount(pool.clusters[picks.indices], minlength=k).astype(np.int64)
            ),
            "excluded_reason": pa.array(
                [exclusions.clusters.get(c) for c in range(k)], pa.string()
            ),
            **_cer_columns(exclusions.cer, k),
        }
    )
    return write_table(stats, layout.cluster_stats, tables.CLUSTER_STATS)


def _cer_columns(cer: ClusterCer | None, k: int) -> dict[str, pa.Array]:
    """Each cluster's mean CER and measured texts: null where the run measured none."""
    if cer is None:
        return {"cer_mean": pa.nulls(k, pa.float64()), "cer_measured": pa.nulls(k, pa.int64())}
    return {
        "cer_mean": pa.array(cer.mean, from_pandas=True),
        "cer_measured": pa.array(cer.measured),
    }


def _write_skipped(
    layout: RunLayout,
    table: pa.Table,
    exclusions: Exclusions,
    picks: Picks,
    earlier: np.ndarray,
    cfg: SelectSection,
) -> dict[str, int]:
    """Excluded texts and near-duplicates go to quarantine (stage `select`) with reasons."""
    ids = table.column("text_id")
    texts = table.column("text")
    source = f"round {layout.round_index}"
    records = [
        {
            "text_id": ids[int(row)].as_py(),
            "source": source,
            "reason": reason,
            "detail": detail,
            "text": texts[int(row)].as_py(),
        }
        for row, reason, detail in zip(
            exclusions.rows.tolist(), exclusions.reasons, exclusions.details, strict=True
        )
    ]
    for row, other, similarity in zip(
        picks.duplicates.tolist(),
        picks.duplicate_of.tolist(),
        picks.duplicate_similarity.tolist(),
        strict=True,
    ):
        when = "an earlier round" if earlier[other] else "this round"
        records.append(
            {
                "text_id": ids[row].as_py(),
                "source": source,
                "reason": "near_duplicate",
                "detail": f"cosine {similarity:.4f} >= {cfg.near_duplicate_threshold} with "
                f"{ids[other].as_py()} (picked in {when})",
                "text": texts[row].as_py(),
            }
        )
    if records:
        write_table(
            quarantine_table("select", records), layout.quarantine("select"), tables.QUARANTINE
        )
    return {"excluded": len(exclusions.rows), "near_duplicate": int(picks.duplicates.size)}


def _pool_notes(gaps: ClusterGaps, pool: Pool, exclusions: Exclusions, earlier: int) -> list[str]:
    notes = []
    empty = np.flatnonzero(gaps.counts == 0)
    if empty.size:
        notes.append(f"clusters {empty.tolist()} hold no text; they have P(c) = 0")
    for cluster, reason in sorted(exclusions.clusters.items()):
        notes.append(f"cluster {cluster} excluded: {reason}")
    notes.extend(_cer_notes(exclusions))
    drained = np.flatnonzero((gaps.counts > 0) & (pool.eligible_counts == 0))
    drained = np.setdiff1d(drained, list(exclusions.clusters))
    if drained.size:
        notes.append(f"clusters {drained.tolist()} have no eligible text left; P(c) = 0")
    if earlier:
        notes.append(f"{earlier} texts picked in earlier rounds are not picked again")
    if exclusions.rows.size:
        notes.append(f"{exclusions.rows.size} texts excluded (quarantine, stage select)")
    return notes


def _cer_notes(exclusions: Exclusions) -> list[str]:
    """How many clusters the ASR check excluded, and which it could not judge."""
    if exclusions.cer is None:
        return []
    by_cer = sum(r.startswith("asr_cluster_cer") for r in exclusions.clusters.values())
    notes = [
        f"{by_cer} clusters excluded for their mean character error rate "
        f"(select.exclude.max_cluster_cer)"
    ]
    unmeasured = np.flatnonzero(exclusions.cer.measured == 0)
    if unmeasured.size:
        notes.append(
            f"clusters {unmeasured.tolist()} have no measured clip; "
            "they are never excluded for their character error rate"
        )
    return notes


def read_selection(path: Path) -> pa.Table:
    """The selection of one round, in rank order."""
    return read_table(path, tables.SELECTION)


SELECT = Stage("select", select_round, reads=("inputs",), needs=("tokenizer",))
