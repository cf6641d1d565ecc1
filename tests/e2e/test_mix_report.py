"""The report of a real small training mix, read as HTML and opened in headless Chromium.

The mix is built by `saladpipe mix` from three sources: the shards of a run whose clips
are known tones, a NeMo manifest of WAV tones (one line broken, one file missing) and a
text-only file; `saladpipe report` then writes its report. Chromium is driven as in
test_report.py (tests/webdriver.py, off the network).
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import soundfile as sf

from saladpipe.audit.mix_report import NOT_RECORDED
from saladpipe.cli import main
from saladpipe.data_schemas import tables
from saladpipe.data_schemas.io import read_table
from saladpipe.data_schemas.mix_manifest import MixManifest
from saladpipe.mix.samples import sample_clips
from tests.factories import tone_run
from tests.mix_factories import RATE, tone, write_mix_config, write_text_lines
from tests.webdriver import AUDIO_JS, CHARTS_JS, Browser

CLIPS_PER_SOURCE = 3
CHARTS = [
    "source-hours",
    "source-rows",
    "by-group",
    "by-voice",
    "by-engine",
    "dist-duration",
    "dist-text-estimate",
]


def _write_tones(folder: Path, n: int) -> list[dict[str, object]]:
    """n WAV tones of 1 to about 2 seconds, as NeMo manifest entries with a domain and a
    speaker (which the report shows as groups and voices)."""
    folder.mkdir(parents=True)
    entries: list[dict[str, object]] = []
    for i in range(n):
        seconds = 1.0 + i / 8
        sf.write(folder / f"n{i}.wav", tone(i, seconds), RATE)
        entries.append(
            {
                "audio_filepath": f"n{i}.wav",
                "text": f"natural speech number {i}",
                "duration": seconds,
                "domain": ("news", "talk")[i % 2],
                "speaker": f"spk-{i % 3}",
            }
        )
    return entries


@dataclass(frozen=True)
class Mix:
    """A mix folder, its report, and what mix.json and rows.parquet say of it."""

    folder: Path
    report: Path
    manifest: MixManifest
    rows: pa.Table


def _mix_config(path: Path, unit: str, total: float, sources: list[dict[str, object]]) -> Path:
    return write_mix_config(
        path, {"name": "audited", "seed": 3, "unit": unit, "total": total}, sources
    )


@pytest.fixture(scope="module")
def mix(tmp_path_factory: pytest.TempPathFactory) -> Mix:
    """About 8 seconds of each source: tones from shards and from a NeMo manifest, and text."""
    root = tmp_path_factory.mktemp("mix")
    run, _ = tone_run(root / "synthetic", n=12)
    natural = root / "natural" / "manifest.jsonl"
    lines = [json.dumps(entry) for entry in _write_tones(natural.parent, 8)]
    lines.append("not a manifest line")
    lines.append(json.dumps({"audio_filepath": "gone.wav", "text": "gone", "duration": 1.0}))
    natural.write_text("\n".join(lines) + "\n", encoding="utf-8")
    text = write_text_lines(root / "text.txt", 30)
    sources: list[dict[str, object]] = [
        {"name": "synthetic", "kind": "shards", "path": run},
        {"name": "natural", "kind": "nemo_manifest", "path": natural},
        {"name": "text", "kind": "text", "path": text},
    ]
    config = _mix_config(root / "mix.toml", "hours", 0.0066, sources)
    out = root / "out"
    assert main(["mix", str(config), "--output-dir", str(out)]) == 0
    assert main(["report", str(out)]) == 0
    manifest = MixManifest.read(out)
    return Mix(
        out, out / "mix_report.html", manifest, read_table(out / "rows.parquet", tables.MIX_ROWS)
    )


@pytest.fixture(scope="module")
def page(mix: Mix) -> Iterator[Browser]:
    with Browser(width=1280, height=900) as browser:
        browser.open(mix.report)
        yield browser


class _Tags(HTMLParser):
    """The attributes of every element of one tag name that has a data-source attribute."""

    def __init__(self, tag: str) -> None:
        super().__init__()
        self.tag = tag
        self.found: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == self.tag and "data-source" in values:
            self.found.append(values)


def _tags(html: str, tag: str) -> list[dict[str, str]]:
    parser = _Tags(tag)
    parser.feed(html)
    return parser.found


def _hours(mix: Mix, source: str) -> float:
    """A source's hours from rows.parquet: audio seconds, or characters at the mix's rate."""
    rows = mix.rows.filter(pc.equal(mix.rows.column("source"), pa.scalar(source)))
    seconds = [
        len(text) * mix.manifest.seconds_per_char if duration is None else duration
        for text, duration in zip(
            tables.strings(rows.column("text")), rows.column("duration_s").to_pylist(), strict=True
        )
    ]
    return sum(seconds) / 3600.0


def test_html_states_each_source_s_numbers(mix: Mix) -> None:
    """Without a browser: one table row per source, holding exactly mix.json's numbers."""
    html = mix.report.read_text(encoding="utf-8")
    rows = {row["data-source"]: row for row in _tags(html, "tr") if "data-taken" in row}
    assert list(rows) == ["synthetic", "natural", "text"]
    for source in mix.manifest.sources:
        row = rows[source.name]
        assert row["data-kind"] == source.kind
        assert float(row["data-requested"]) == source.requested
        assert float(row["data-available"]) == source.available
        assert float(row["data-taken"]) == source.taken
        assert int(row["data-rows"]) == source.rows
        # an hours mix takes each source's hours, text rows at their estimate
        assert float(row["data-hours"]) == pytest.approx(source.taken, rel=1e-9)
        assert float(row["data-hours"]) == pytest.approx(_hours(mix, source.name), rel=1e-9)
    # the reasons a source's rows were left out sit in its own row
    table = html.split('id="source-table"', 1)[1].split("</table>", 1)[0]
    cells = dict(re.findall(r'<tr data-source="(\w+)"(.*?)</tr>', table, re.DOTALL))
    for source in mix.manifest.sources:
        reasons = re.findall(r'data-reason="(\w+)" data-count="(\d+)"', cells[source.name])
        assert {reason: int(count) for reason, count in reasons} == source.skipped
    assert "not_a_manifest_line" in mix.manifest.source("natural").skipped
    assert mix.manifest.source("text").skipped == {"empty": 1}
    # text hours are said to be estimates, at the mix's rate
    assert re.search(r'id="estimate-note">\s*Text rows have no audio', html)
    assert re.search(r"characters &times;\s+0.065 s", html)


def test_report_is_one_file_that_needs_no_network(mix: Mix) -> None:
    html = mix.report.read_text(encoding="utf-8")
    sources = re.findall(r'\b(?:src|href)="([^"]*)"', html)
    assert sources and all(s.startswith(("data:audio/wav;base64,", "#")) for s in sources)
    assert "<link" not in html and "<script" not in html and "@import" not in html
    assert "url(" not in html
    # the SVG namespace is a name, not a fetch
    assert set(re.findall(r"\w+://[^\s\"'<>)]*", html)) == {"http://www.w3.org/2000/svg"}


def test_source_table_shows_mix_json_s_numbers(page: Browser, mix: Mix) -> None:
    shown = page.run(
        """
        return Array.from(document.querySelectorAll("#source-table tbody tr")).map(function (r) {
          return {data: Object.assign({}, r.dataset),
                  cells: Array.from(r.cells).map(function (c) { return c.textContent.trim(); })};
        });
        """
    )
    head = page.run(
        """return Array.from(document.querySelectorAll("#source-table thead th"))
             .map(function (h) { return h.textContent.trim(); });"""
    )
    assert [row["data"]["source"] for row in shown] == ["synthetic", "natural", "text"]
    for row, source in zip(shown, mix.manifest.sources, strict=True):
        data, cells = row["data"], dict(zip(head, row["cells"], strict=True))
        assert float(data["taken"]) == source.taken
        assert float(data["requested"]) == source.requested
        assert int(data["rows"]) == source.rows
        assert float(cells["taken"]) == pytest.approx(source.taken, rel=1e-3)
        assert float(cells["asked"]) == pytest.approx(source.requested, rel=1e-3)
        assert float(cells["available"]) == pytest.approx(source.available, rel=1e-3)
        assert int(cells["rows"]) == source.rows
        for reason, count in source.skipped.items():
            assert f"{reason}: {count}" in cells["left out"]


def test_charts_are_drawn(page: Browser) -> None:
    charts = page.run(CHARTS_JS)
    assert [c["name"] for c in charts] == CHARTS
    for chart in charts:
        assert chart["width"] > 500 and chart["height"] > 150, chart
        assert chart["marks"] > 0 and chart["markWidth"] > 0 and chart["markHeight"] > 0, chart
    drawn = {c["name"]: c["marks"] for c in charts}
    assert drawn["source-hours"] == drawn["source-rows"] == 3
    assert drawn["dist-duration"] == 2 and drawn["dist-text-estimate"] == 1  # one step per source


def test_groups_voices_and_engines_add_up_to_each_source(page: Browser, mix: Mix) -> None:
    tables_ = page.run(
        """
        var out = {};
        ["group", "voice", "engine"].forEach(function (key) {
          out[key] = Array.from(document.querySelectorAll("#by-" + key + "-table tbody tr"))
            .map(function (r) { return Object.assign({}, r.dataset); });
        });
        return out;
        """
    )
    for key, rows in tables_.items():
        speech_only = key != "group"
        for source in mix.manifest.sources:
            own = [r for r in rows if r["source"] == source.name]
            if speech_only and source.kind == "text":
                assert own == []
                continue
            assert sum(int(r["rows"]) for r in own) == source.rows, (key, source.name)
            assert sum(float(r["hours"]) for r in own) == pytest.approx(source.taken, rel=1e-9)
    groups = {(r["source"], r["value"]): int(r["rows"]) for r in tables_["group"]}
    expected = Counter(
        zip(
            mix.rows.column("source").to_pylist(),
            mix.rows.column("group").fill_null(pa.scalar(NOT_RECORDED)).to_pylist(),
            strict=True,
        )
    )
    assert groups == dict(expected)
    voices = {r["value"] for r in tables_["voice"] if r["source"] == "natural"}
    assert voices <= {"spk-0", "spk-1", "spk-2"}
    engines = {(r["source"], r["value"]) for r in tables_["engine"]}
    assert ("natural", NOT_RECORDED) in engines and ("synthetic", "tone") in engines


def test_every_speech_source_has_clips_that_play(page: Browser, mix: Mix) -> None:
    players = page.run_async(AUDIO_JS, "[data-item-id]")
    by_source = Counter(player["data"]["source"] for player in players)
    assert by_source == {"synthetic": CLIPS_PER_SOURCE, "natural": CLIPS_PER_SOURCE}
    counts = page.run(
        """return Array.from(document.querySelectorAll(".clips")).map(function (d) {
             return [d.dataset.source, parseInt(d.dataset.clips, 10)]; });"""
    )
    assert counts == [["synthetic", CLIPS_PER_SOURCE], ["natural", CLIPS_PER_SOURCE]]
    durations = dict(
        zip(
            tables.strings(mix.rows.column("item_id")),
            mix.rows.column("duration_s").to_pylist(),
            strict=True,
        )
    )
    for player in players:
        assert player["error"] is None and player["state"] >= 1, player
        expected = float(player["data"]["duration"])
        assert expected == durations[player["data"]["itemId"]]
        assert abs(player["duration"] - expected) < 0.05, player


def test_page_loads_without_console_errors(page: Browser) -> None:
    """Last of the page's tests, so that it also sees what loading the clips logged."""
    assert page.console_errors() == []
    assert page.run("return document.title;") == "saladpipe mix: audited"


def test_a_clip_that_does_not_load_is_left_out_with_a_note(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    entries = _write_tones(tmp_path / "audio", 3)
    manifest = tmp_path / "audio" / "natural.jsonl"
    manifest.write_text("".join(json.dumps(entry) + "\n" for entry in entries))
    source: dict[str, object] = {"name": "natural", "kind": "nemo_manifest", "path": manifest}
    config = _mix_config(tmp_path / "mix.toml", "rows", 3, [source])
    out = tmp_path / "out"
    assert main(["mix", str(config), "--output-dir", str(out)]) == 0
    (tmp_path / "audio" / "n1.wav").unlink()  # gone after the mix was drawn
    assert sorted(clip.item_id for clip in sample_clips(out, per_source=3)) == ["n0.wav", "n2.wav"]
    report = tmp_path / "r.html"
    with caplog.at_level(logging.WARNING, logger="saladpipe"):
        assert main(["report", str(out), "-o", str(report)]) == 0
    assert "mix audited: source natural: clip n1.wav left out of the report" in caplog.text
    printed = capsys.readouterr().out.splitlines()[-1]
    assert printed.startswith(f"wrote {report} (") and printed.endswith(" MB, 2 clips)")
    html = report.read_text(encoding="utf-8")
    assert 'data-source="natural" data-clips="2"' in html
    assert html.count("<audio ") == 2


def test_clips_per_source_may_not_be_negative(mix: Mix, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(mix.folder), "--clips-per-source", "-1"]) == 2
    assert "--clips-per-source: must be at least 0 (got -1)" in capsys.readouterr().err
