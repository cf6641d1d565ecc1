"""The report of a real small run, opened in headless Chromium; the flow's Prefect artifacts.

The run is the session's `e2e_run` (the real flow on a small corpus). Chromium is Debian's
`chromium`, driven through Debian's `chromium-driver` (tests/webdriver.py), with the flags
that keep it off the network. The screenshot is kept in test-artifacts/.
"""

from __future__ import annotations

import asyncio
import json
import re
import struct
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from saladpipe.cli import main
from saladpipe.data_schemas import tables
from tests import REPO
from tests.factories import E2ERun
from tests.webdriver import AUDIO_JS, CHARTS_JS, Browser

pytestmark = pytest.mark.e2e

ARTIFACTS = REPO / "test-artifacts"
CHARTS = [
    "cluster-gap",
    "cluster-share",
    "cluster-selected",
    "pool-map",
    "dist-gap",
    "dist-duration",
    "dist-cer",  # the run has an ASR check: each voice's CER distribution
]


@pytest.fixture(scope="module")
def report(e2e_run: E2ERun, tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert e2e_run.exit_code == 0
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert main(["report", str(e2e_run.run_dir), "-o", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def page(report: Path) -> Iterator[Browser]:
    with Browser(width=1280, height=900) as browser:
        browser.open(report)
        yield browser


def test_report_is_one_file_that_needs_no_network(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    sources = re.findall(r'\b(?:src|href)="([^"]*)"', html)
    assert sources and all(s.startswith(("data:audio/", "#")) for s in sources), sources[:5]
    assert "<link" not in html and "<script src" not in html and "@import" not in html
    assert "url(" not in html


def test_each_cluster_is_labelled_with_the_commonest_domain_of_its_nearest_texts(
    report: Path,
) -> None:
    html = report.read_text(encoding="utf-8")
    labels = re.findall(r'<span class="domain">([^<]+)</span>', html)
    sections = re.findall(r'<details class="cluster"', html)
    assert sections and len(labels) == len(sections)
    assert all(re.fullmatch(r"(noun|verb)\.\w+, \d+/\d+ nearest", label) for label in labels)


def test_charts_are_drawn(page: Browser, e2e_run: E2ERun) -> None:
    charts = page.run(CHARTS_JS)
    assert [c["name"] for c in charts] == CHARTS
    for chart in charts:
        assert chart["width"] > 500 and chart["height"] > 150, chart
        assert chart["marks"] > 0 and chart["markWidth"] > 0 and chart["markHeight"] > 0, chart
    stats = pq.read_table(e2e_run.run_dir / "clusters" / "cluster_stats.parquet")
    drawn = {c["name"]: c["marks"] for c in charts}
    assert drawn["cluster-gap"] == stats.column("gap_mean").drop_null().length()
    assert drawn["cluster-share"] == stats.num_rows
    # the map: every text of this small pool, rings on the selected ones, 4 centroids
    assert drawn["pool-map"] == 48 + 18 + 4


def test_audio_players_load_the_run_s_clips(page: Browser, e2e_run: E2ERun) -> None:
    players = page.run_async(AUDIO_JS, "[data-text-id]")
    assert players, "no audio element in the report"
    durations: dict[str, float] = {}
    for path in sorted((e2e_run.run_dir / "shards").glob("*.parquet")):
        table = pq.read_table(path, columns=["text_id", "duration_s"])
        ids, seconds = tables.strings(table["text_id"]), tables.floats(table["duration_s"])
        durations.update(zip(ids, seconds, strict=True))
    for player in players:
        assert player["error"] is None and player["state"] >= 1, player
        assert player["duration"] > 0
        assert abs(player["duration"] - durations[player["data"]["textId"]]) < 0.05, player


def test_cluster_table_shows_each_cluster_s_probe_cer(page: Browser, e2e_run: E2ERun) -> None:
    """As the browser renders it: the cluster table's CER columns hold what the run measured."""
    table = page.run(
        """
        var t = document.getElementById("cluster-table");
        var head = Array.from(t.querySelectorAll("thead th")).map(function (h) {
          return h.textContent.trim(); });
        var rows = Array.from(t.querySelectorAll("tbody tr")).map(function (r) {
          return Array.from(r.querySelectorAll("td")).map(function (d) {
            return d.textContent.trim(); }); });
        return [head, rows];
        """
    )
    head, rows = table
    stats = pq.read_table(e2e_run.run_dir / "clusters" / "cluster_stats.parquet").to_pylist()
    at = head.index("cer_mean")
    assert head[at + 1] == "cer_measured"
    shown = {int(row[0]): (float(row[at]), int(row[at + 1])) for row in rows}
    for cluster in stats:
        cer, measured = shown[cluster["cluster"]]
        assert measured == cluster["cer_measured"] == 3
        assert cer == pytest.approx(cluster["cer_mean"], abs=5e-4 + 1e-3 * cluster["cer_mean"])


def test_filter_box_shows_one_cluster(page: Browser) -> None:
    shown = page.run(
        """
        var box = document.getElementById("cluster-filter");
        box.value = arguments[0];
        box.dispatchEvent(new Event("input"));
        var visible = Array.from(document.querySelectorAll("details.cluster"))
          .filter(function (d) { return !d.hidden; })
          .map(function (d) { return d.dataset.cluster; });
        var count = document.getElementById("cluster-count").textContent;
        box.value = "";
        box.dispatchEvent(new Event("input"));
        return [visible, count];
        """,
        "2",
    )
    assert shown == [["2"], "1 of 4 clusters"]


def test_screenshot_is_kept_as_an_artifact(page: Browser) -> None:
    out = page.screenshot(ARTIFACTS / "report-e2e.png")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 1200 and height > 3000  # the whole page, not the window
    assert len(data) > 100_000


def test_flow_run_carries_the_audit_artifacts(e2e_run: E2ERun) -> None:
    """The markdown summary and the cluster table are on the run's flow run in Prefect."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from saladpipe.flows.server import local_prefect_server

    assert e2e_run.flow_run_id
    flow_run_id = uuid.UUID(e2e_run.flow_run_id)

    async def read() -> dict[str, tuple[str | None, Any]]:  # Any: an artifact's data
        async with get_client() as client:
            found = await client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])
                )
            )
            return {a.key: (a.type, a.data) for a in found if a.key}

    with (
        local_prefect_server(e2e_run.run_dir / "state") as url,
        temporary_settings(updates={PREFECT_API_URL: url}),
    ):
        artifacts = asyncio.run(read())
    kind, text = artifacts["saladpipe-test-summary"]
    assert kind == "markdown" and isinstance(text, str)
    assert text.startswith("# saladpipe run `test`") and "| selected | 18 |" in text
    kind, table = artifacts["saladpipe-test-clusters"]
    rows = json.loads(table) if isinstance(table, str) else table
    assert kind == "table" and [row["cluster"] for row in rows] == [0, 1, 2, 3]
    assert sum(row["selected"] for row in rows) == 18
    assert {"pool_share", "probe_count", "gap_mean", "gap_std", "probability"} <= set(rows[0])
