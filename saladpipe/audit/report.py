"""`saladpipe report`: one self-contained HTML file that shows, and plays, what a run selected.

No server and no network: charts are inline SVG, the style sheet and the small script
are inlined, and a bounded, seeded sample of clips is embedded as data URIs. The
file's size depends on the sample sizes, not on how many rows the run selected.
"""

from __future__ import annotations

import math
import shlex
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from saladpipe import __version__
from saladpipe.audit import figures
from saladpipe.audit.charts import Distribution, color, fmt, histogram_chart, viridis
from saladpipe.audit.clips import data_uri, read_clips
from saladpipe.audit.pool_map import PoolMap, build_pool_map
from saladpipe.audit.representatives import nearest_to_centroids, texts_of
from saladpipe.audit.rows import (
    STATUS_QUARANTINED,
    STATUS_SYNTHESIZED,
    AuditTable,
    audit_table,
)
from saladpipe.audit.run import RunFolder, read_columns
from saladpipe.audit.sampling import sample_per_cluster
from saladpipe.audit.summary import RunSummary, summarize
from saladpipe.audit.template import render, svg
from saladpipe.data_schemas import tables
from saladpipe.data_schemas.errors import ConfigError
from saladpipe.data_schemas.io import write_text

# Clusters whose gap moved most between the first and last round, drawn and listed.
_MOVERS = 6
# TTS failures listed as examples in the quarantine section.
_FAILURE_EXAMPLES = 10
# Columns not repeated in a row's provenance list (shown elsewhere or empty for clips).
_NOT_PROVENANCE = {"text", "text_id", "status", "quarantine_reason", "quarantine_detail"}


@dataclass(frozen=True)
class ReportOptions:
    """Sample sizes and seed; they bound the report's size whatever the run's."""

    seed: int = 0
    rows_per_cluster: int = 2
    max_clips: int = 48
    representatives: int = 3
    map_points: int = 3000
    map_selected: int = 1000
    bins: int = 30

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            lowest = 0 if item.name in {"seed", "max_clips"} else 1
            if value < lowest:
                option = item.name.replace("_", "-")
                raise ConfigError(f"--{option}: must be at least {lowest} (got {value})")


@dataclass(frozen=True)
class ReportResult:
    """What was written: the file, its size, the clips in it, the rows it describes."""

    path: Path
    bytes: int
    clips: int
    rows: int
    seconds: float


def explain_command(run_dir: Path, text_id: str) -> str:
    """The command line that prints why a text was or was not selected."""
    return f"saladpipe explain --run-dir {shlex.quote(str(run_dir))} {shlex.quote(text_id)}"


@dataclass
class SampleRow:
    """One selected row as the report shows it."""

    text_id: str
    text: str
    provenance: list[tuple[str, str]]
    explain: str
    audio: str | None = None  # a data URI, when the clip budget allowed it


@dataclass
class ClusterView:
    """One cluster's section: its numbers, nearest texts and a sample of its picks."""

    cluster: int
    stats: dict[str, Any]
    representatives: list[dict[str, Any]] = field(default_factory=list)
    rows: list[SampleRow] = field(default_factory=list)
    selected: int = 0

    @property
    def main_domain(self) -> str | None:
        """The commonest corpus `domain` of the texts nearest the centroid, with its count
        ("noun.artifact, 4/5 nearest"); None when the corpus has no domain column."""
        domains = [r["domain"] for r in self.representatives if r.get("domain")]
        if not domains:
            return None
        top, count = Counter(domains).most_common(1)[0]
        return f"{top}, {count}/{len(self.representatives)} nearest"


def _value(value: Any) -> str:
    if isinstance(value, float):
        return fmt(value)
    return str(value)


def _provenance(row: dict[str, Any], columns: list[str]) -> list[tuple[str, str]]:
    """Every column of the row that holds something, the normalized text only if it differs."""
    return [
        (k, _value(row[k]))
        for k in columns
        if row.get(k) is not None and not (k == "normalized_text" and row[k] == row["text"])
    ]


def _gap_array(clusters: list[dict[str, Any]], k: int) -> np.ndarray:
    gap = np.full(k, np.nan)
    for row in clusters:
        value = row.get("gap_mean")
        if value is None:
            value = row.get("gap_used")
        if value is not None and 0 <= row["cluster"] < k:
            gap[row["cluster"]] = float(value)
    return gap


def _cluster_views(
    run: RunFolder,
    audit: AuditTable,
    clusters: list[dict[str, Any]],
    options: ReportOptions,
    unmeasured: list[str],
) -> list[ClusterView]:
    table = audit.table
    clusters_of = table.column("cluster").to_numpy()
    selected = np.bincount(clusters_of, minlength=len(clusters))
    known = {r["cluster"] for r in clusters}
    # clusters with picks but no statistics row still get a section
    rows = clusters + [{"cluster": int(c)} for c in np.flatnonzero(selected) if c not in known]
    order = sorted(
        rows,
        key=lambda r: (r.get("gap_mean") is None, -(r.get("gap_mean") or 0.0), r["cluster"]),
    )
    views = {
        r["cluster"]: ClusterView(
            r["cluster"],
            r,
            selected=int(selected[r["cluster"]]) if r["cluster"] < selected.size else 0,
        )
        for r in order
    }
    nearest = nearest_to_centroids(run.assignments(), options.representatives)
    corpus = texts_of(
        run.corpus(),
        zip(
            tables.ints(nearest.column("shard_index")),
            tables.strings(nearest.column("text_id")),
            strict=True,
        ),
    )
    for row in nearest.to_pylist():
        found = corpus.get(row["text_id"], {})
        if row["cluster"] in views:
            views[row["cluster"]].representatives.append(
                {
                    **row,
                    "text": found.get("text") or "(not found in the corpus shards)",
                    "domain": found.get("domain"),
                }
            )
    if not run.assignments():
        unmeasured.append("representative texts: the run folder keeps no cluster assignments")

    made = np.flatnonzero(
        pc.equal(table.column("status"), pa.scalar(STATUS_SYNTHESIZED)).to_numpy()
    )
    samples = sample_per_cluster(
        clusters_of,
        made,
        options.rows_per_cluster,
        list(views),
        np.random.default_rng([options.seed, 1]),
    )
    picked = [(c, int(i)) for c, rows in samples.items() for i in rows]
    with_audio = picked[: options.max_clips]
    clips = read_clips(
        run.root,
        [
            (table.column("shard")[i].as_py(), table.column("shard_row")[i].as_py())
            for _, i in with_audio
        ],
    )
    audio = {i: clip for (_, i), clip in zip(with_audio, clips, strict=True)}
    columns = [c for c in table.column_names if c not in _NOT_PROVENANCE]
    for c, i in picked:
        row = table.slice(i, 1).to_pylist()[0]
        clip = audio.get(i)
        views[c].rows.append(
            SampleRow(
                text_id=row["text_id"],
                text=row["text"],
                provenance=_provenance(row, columns),
                explain=explain_command(run.root, row["text_id"]),
                audio=None if clip is None else data_uri(clip),
            )
        )
    return list(views.values())


def _gap_colors(gap: np.ndarray) -> Callable[[float | None], str]:
    """The viridis colour of a cluster gap on the scale of all cluster gaps."""
    finite = gap[np.isfinite(gap)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)

    def paint(value: float | None) -> str:
        if value is None:
            return viridis(math.nan)
        return viridis((value - lo) / (hi - lo) if hi > lo else 0.5)

    return paint


def _pool_map(
    run: RunFolder, audit: AuditTable, gap: np.ndarray, options: ReportOptions, notes: list[str]
) -> tuple[PoolMap | None, str]:
    latest = run.rounds[-1]
    estimates = run.gap_estimates(latest)
    if estimates:
        label = f"per-text gap estimate, round {latest}"
    else:
        label = f"cluster gap, round {latest}"
        notes.append(
            "per-text gap estimates: none in this run; the map and the pool's gap "
            "distribution show each text's cluster gap"
        )
    pool_map = build_pool_map(
        run.embeddings(),
        run.assignments(),
        estimates,
        gap,
        audit.table.select(["text_id", "selection_round"]),
        run.centroids(),
        options.map_points,
        options.map_selected,
        np.random.default_rng([options.seed, 0]),
    )
    if pool_map is None:
        notes.append("map of the corpus: the run folder keeps no embeddings")
    return pool_map, label


def _distributions(
    audit: AuditTable, pool_map: PoolMap | None, gap_label: str, bins: int, notes: list[str]
) -> list[str]:
    table = audit.table
    voice = table.column("tts_voice").fill_null(pa.scalar("no clip (TTS quarantined or missing)"))
    by_voice = table.set_column(table.column_names.index("tts_voice"), "tts_voice", voice)
    groups = figures.groups_by(by_voice, "tts_voice", "gap_score")
    if pool_map is not None:
        pool = pool_map.gap[: pool_map.sampled]
        groups.insert(0, Distribution(f"pool sample, {gap_label}", pool, color(0)))
    made = table.filter(pc.equal(table.column("status"), pa.scalar(STATUS_SYNTHESIZED)))
    charts = [
        histogram_chart(
            "dist-gap",
            "Gap scores: the pool against the selected rows, per voice",
            groups,
            "gap score",
            bins,
        ),
        histogram_chart(
            "dist-duration",
            "Clip durations per voice",
            figures.groups_by(made, "tts_voice", "duration_s"),
            "seconds",
            bins,
        ),
    ]
    cer = audit.cer_column
    if cer is None:
        notes.append("ASR character error rate: not measured in this run")
    else:
        measured = made.filter(pc.is_valid(made.column(cer)))
        charts.append(
            histogram_chart(
                "dist-cer",
                "ASR character error rate per voice",
                figures.groups_by(measured, "tts_voice", cer),
                "character error rate",
                bins,
            )
        )
    if not any("licen" in name for name in table.column_names):
        notes.append("voice licence: not recorded in this run's shards")
    return charts


def _rounds(run: RunFolder, notes: list[str]) -> tuple[str | None, list[dict[str, Any]]]:
    gaps = {}
    for r in run.rounds:
        stats = run.cluster_stats(r)
        if stats is not None and "gap_mean" in stats.column_names:
            ordered = stats.sort_by("cluster")
            gaps[r] = ordered.column("gap_mean").to_numpy(zero_copy_only=False).astype(float)
    if len(gaps) < 2:
        notes.append("gap across rounds: the run has one selection round")
        return None, []
    first, last = gaps[min(gaps)], gaps[max(gaps)]
    size = min(len(first), len(last))
    change = last[:size] - first[:size]
    ranked = [
        int(c)
        for c in np.argsort(-np.nan_to_num(np.abs(change), nan=-1.0), kind="stable")[:_MOVERS]
    ]
    movers: list[dict[str, Any]] = [
        {
            "cluster": c,
            "gaps": [fmt(float(gaps[r][c])) if c < len(gaps[r]) else "-" for r in sorted(gaps)],
            "change": fmt(float(change[c])),
        }
        for c in ranked
        if math.isfinite(change[c])
    ]
    return figures.rounds_chart(gaps, [int(m["cluster"]) for m in movers]), movers


def _quarantine(run: RunFolder) -> list[dict[str, Any]]:
    counts: Counter[tuple[str, int, str]] = Counter()
    for tagged in run.quarantine():
        table = read_columns(tagged.path, ["stage", "reason"])
        for stage, reason in zip(
            tables.strings(table.column("stage")),
            tables.strings(table.column("reason")),
            strict=True,
        ):
            counts[(stage, tagged.round, reason)] += 1
    return [
        {"stage": stage, "round": r, "reason": reason, "rows": n}
        for (stage, r, reason), n in sorted(counts.items())
    ]


def _failures(table: pa.Table) -> list[dict[str, Any]]:
    failed = table.filter(pc.equal(table.column("status"), pa.scalar(STATUS_QUARANTINED)))
    columns = ["text_id", "selection_round", "cluster", "quarantine_reason", "quarantine_detail"]
    return failed.select([*columns, "text"]).slice(0, _FAILURE_EXAMPLES).to_pylist()


def build_report(
    run_dir: Path, out_path: Path, options: ReportOptions | None = None
) -> ReportResult:
    """Read the run folder, draw, sample, embed and write the report atomically."""
    options = options or ReportOptions()
    started = time.perf_counter()
    run = RunFolder.open(run_dir.resolve())
    audit = audit_table(run)
    summary: RunSummary = summarize(run, audit)
    clusters = summary.clusters
    k = len(clusters) or int(audit.table.column("cluster").to_numpy().max(initial=-1)) + 1
    gap = _gap_array(clusters, k)
    unmeasured: list[str] = []
    pool_map, gap_label = _pool_map(run, audit, gap, options, unmeasured)
    rounds_chart, movers = _rounds(run, unmeasured)
    views = _cluster_views(run, audit, clusters, options, unmeasured)
    latest = summary.latest_round
    clips = sum(1 for view in views for row in view.rows if row.audio)
    context = {
        "summary": summary,
        "run_dir": str(run.root),
        "models": run.manifest.models if run.manifest is not None else {},
        "created": run.manifest.created_at if run.manifest is not None else None,
        "config_hash": run.manifest.config_hash if run.manifest is not None else None,
        "version": __version__,
        "options": options,
        "cluster_charts": [
            svg(figures.cluster_gap_chart(clusters, latest)),
            svg(figures.share_chart(clusters, latest)),
            svg(figures.selected_chart(k, audit.table, run.rounds)),
        ],
        "clusters": clusters,
        "map_chart": None if pool_map is None else svg(figures.map_chart(pool_map, gap_label)),
        "pool_map": pool_map,
        "distribution_charts": [
            svg(chart)
            for chart in _distributions(audit, pool_map, gap_label, options.bins, unmeasured)
        ],
        "rounds_chart": None if rounds_chart is None else svg(rounds_chart),
        "movers": movers,
        "views": views,
        "clips": clips,
        "quarantine": _quarantine(run),
        "failures": _failures(audit.table),
        "unmeasured": unmeasured,
        "explain_example": explain_command(run.root, "TEXT_ID"),
        "gap_color": _gap_colors(gap),
    }
    html = render("report.html", context)
    write_text(html, out_path)
    return ReportResult(
        out_path,
        out_path.stat().st_size,
        clips,
        audit.table.num_rows,
        time.perf_counter() - started,
    )
