"""The run's audit summary as Prefect artifacts on the flow run, for the Prefect UI.

A markdown summary (counts, notes, the clusters with the largest gap) and a table of
every cluster's statistics; the same numbers `saladpipe report` shows. Keys are
derived from the run name, so the UI keeps one versioned artifact per run name.
"""

from __future__ import annotations

import re
from pathlib import Path

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from saladpipe.pipeline.audit import RunFolder, audit_table, markdown, summarize


def artifact_key(run_name: str) -> str:
    """Prefect keys allow lowercase letters, digits and dashes only."""
    slug = re.sub(r"[^a-z0-9]+", "-", run_name.lower()).strip("-") or "run"
    return f"saladpipe-{slug}"


def publish_audit_summary(run_dir: Path) -> tuple[str, str]:
    """Create both artifacts in the current flow or task run; returns their keys."""
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
    return f"{key}-summary", f"{key}-clusters"
