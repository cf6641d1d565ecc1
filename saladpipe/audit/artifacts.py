"""The run's audit summary as Prefect artifacts on the flow run, for the Prefect UI.

A markdown summary (counts, notes, the clusters with the largest gap), a table of
every cluster's statistics (the same numbers `saladpipe report` shows) and, when any
row was quarantined, a table of the failures by stage, file and reason. Keys are
derived from the run name, so the UI keeps one versioned artifact per run name.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from saladpipe.audit import RunFolder, audit_table, markdown, summarize
from saladpipe.data_schemas import tables
from saladpipe.data_schemas.io import read_table
from saladpipe.data_schemas.layout import RunLayout


def artifact_key(run_name: str) -> str:
    """Prefect keys allow lowercase letters, digits and dashes only."""
    slug = re.sub(r"[^a-z0-9]+", "-", run_name.lower()).strip("-") or "run"
    return f"saladpipe-{slug}"


def failure_rows(run_dir: Path) -> list[dict[str, object]]:
    """Quarantined rows counted by stage, file, reason and the first line of the detail."""
    layout = RunLayout(run_dir)
    counts: Counter[tuple[str, str, str, str]] = Counter()
    for path in sorted(layout.quarantine_dir.glob("*.parquet")):
        table = read_table(path, tables.QUARANTINE, ["stage", "source", "reason", "detail"])
        for row in table.to_pylist():
            detail = (row["detail"] or "").splitlines()[0] if row["detail"] else ""
            counts[(row["stage"], row["source"], row["reason"], detail)] += 1
    return [
        {"stage": stage, "file": source, "reason": reason, "detail": detail, "rows": n}
        for (stage, source, reason, detail), n in sorted(counts.items())
    ]


def publish_audit_summary(run_dir: Path) -> tuple[str, ...]:
    """Create the artifacts in the current flow or task run; returns their keys."""
    run = RunFolder.open(run_dir)
    summary = summarize(run, audit_table(run))
    key = artifact_key(summary.name)
    create_markdown_artifact(
        markdown=markdown(summary, str(run_dir)),
        key=f"{key}-summary",
        description=f"saladpipe run {summary.name}: selection summary",
    )
    create_table_artifact(
        table=summary.clusters,
        key=f"{key}-clusters",
        description=f"saladpipe run {summary.name}: clusters of round {summary.latest_round}",
    )
    failures = failure_rows(run_dir)
    if not failures:
        return f"{key}-summary", f"{key}-clusters"
    create_table_artifact(
        table=failures,
        key=f"{key}-failures",
        description=f"saladpipe run {summary.name}: quarantined rows by stage and reason",
    )
    return f"{key}-summary", f"{key}-clusters", f"{key}-failures"
