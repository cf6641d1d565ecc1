"""The run in numbers: headline counts and one row per cluster.

Shared by the HTML report and the Prefect artifacts of the flow (a markdown summary
and a table), so that both say the same thing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from saladpipe.audit.rows import (
    STATUS_MISSING,
    STATUS_QUARANTINED,
    STATUS_SYNTHESIZED,
    AuditTable,
)
from saladpipe.audit.run import RunFolder
from saladpipe.data_schemas import tables
from saladpipe.data_schemas.errors import ConfigError
from saladpipe.selectors import recorded_strategy

# Cluster-statistics columns shown, in order; a run that lacks one shows it as absent.
_STAT_COLUMNS = (
    "cluster",
    "pool_count",
    "pool_share",
    "probe_count",
    "gap_mean",
    "gap_std",
    "gap_used",
    "probability",
    "eligible_count",
    "selected",
    "excluded_reason",
    "cer_mean",
    "cer_measured",
)
# The ASR columns, shown only where the round measured a clip's character error rate.
_CER_COLUMNS = ("cer_mean", "cer_measured")


def _clean(value: Any) -> Any:
    """JSON- and table-friendly: NaN becomes None."""
    return None if isinstance(value, float) and math.isnan(value) else value


def cluster_rows(run: RunFolder, audit: AuditTable, round_index: int) -> list[dict[str, Any]]:
    """One dict per cluster from the round's statistics, with `selected` counted if absent."""
    stats = run.cluster_stats(round_index)
    if stats is None:
        return []
    columns = [c for c in _STAT_COLUMNS if c in stats.column_names]
    rows = stats.select(columns).sort_by("cluster").to_pylist()
    if "selected" not in stats.column_names:
        table = audit.table
        of_round = table.filter(pc.equal(table.column("selection_round"), pa.scalar(round_index)))
        counts = np.bincount(of_round.column("cluster").to_numpy(), minlength=len(rows))
        for row in rows:
            row["selected"] = int(counts[row["cluster"]])
    if not any(row.get("cer_measured") for row in rows):
        rows = [{k: v for k, v in row.items() if k not in _CER_COLUMNS} for row in rows]
    return [{key: _clean(value) for key, value in row.items()} for row in rows]


@dataclass(frozen=True)
class RunSummary:
    """Headline numbers, notes, and the latest round's clusters."""

    name: str
    rounds: list[int]
    headline: dict[str, Any]
    clusters: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    @property
    def latest_round(self) -> int:
        return self.rounds[-1]


def _count(table: pa.Table, status: str) -> int:
    return table.filter(pc.equal(table.column("status"), pa.scalar(status))).num_rows


def summarize(run: RunFolder, audit: AuditTable) -> RunSummary:
    """Counts from the manifest (when the run finished) and from the audit rows."""
    table = audit.table
    synthesized = table.filter(pc.equal(table.column("status"), pa.scalar(STATUS_SYNTHESIZED)))
    seconds = float(pc.sum(synthesized.column("duration_s")).as_py() or 0.0)
    manifest_counts = run.manifest.counts if run.manifest is not None else {}
    clusters = cluster_rows(run, audit, run.rounds[-1])
    select = run.config.get("select", {})
    headline: dict[str, Any] = {
        "corpus texts": manifest_counts.get("corpus_texts")
        or sum(int(row.get("pool_count") or 0) for row in clusters),
        "clusters": len(clusters) or run.config.get("cluster", {}).get("k"),
        "probes scored": manifest_counts.get("probes_scored"),
        "rounds": len(run.rounds),
        "strategy": ", ".join(sorted(set(tables.strings(table.column("strategy"))))),
        "strategy settings": _strategy_settings(select),
        "selected": table.num_rows,
        "synthesized": synthesized.num_rows,
        "TTS quarantined": _count(table, STATUS_QUARANTINED),
        "not synthesized yet": _count(table, STATUS_MISSING),
        "audio hours": round(seconds / 3600, 4),
        "voices": len({v for v in synthesized.column("tts_voice").to_pylist() if v}),
    }
    notes = list(run.manifest.notes) if run.manifest is not None else []
    if run.manifest is None:
        notes.insert(0, "the run folder has no manifest.json: the run did not finish")
    notes.extend(audit.notes)
    return RunSummary(run.name, run.rounds, headline, clusters, notes)


def _strategy_settings(select: dict[str, Any]) -> str | None:
    """The latest round's strategy with its parameters (`salad, gamma 5`); None where the
    config names none or a strategy this process cannot find (a plugin not imported)."""
    if "strategy" not in select:
        return None
    try:
        return recorded_strategy(select).describe()
    except ConfigError:
        return None


def markdown(summary: RunSummary, run_dir: str, top: int = 10) -> str:
    """A short markdown summary: counts, notes, the clusters with the largest gap."""
    lines = [f"# saladpipe run `{summary.name}`", ""]
    lines += ["| | |", "|---|---|"]
    lines += [f"| {key} | {_md(value)} |" for key, value in summary.headline.items()]
    if summary.notes:
        lines += ["", "**Notes**", ""] + [f"- {note}" for note in summary.notes]
    ranked = sorted(
        (row for row in summary.clusters if row.get("gap_mean") is not None),
        key=lambda row: -row["gap_mean"],
    )[:top]
    if ranked:
        lines += [
            "",
            f"**Clusters with the largest gap (round {summary.latest_round})**",
            "",
            "| cluster | gap mean | gap std | probes | pool share | P(c) | selected |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {row['cluster']} | {_md(row['gap_mean'])} | {_md(row.get('gap_std'))} | "
            f"{row.get('probe_count')} | {_md(row.get('pool_share'))} | "
            f"{_md(row.get('probability'))} | {row.get('selected')} |"
            for row in ranked
        ]
    lines += [
        "",
        f"Full report (charts, map, audio): `saladpipe report {run_dir}`; "
        f"rows: `saladpipe audit {run_dir}`.",
    ]
    return "\n".join(lines) + "\n"


def _md(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")
