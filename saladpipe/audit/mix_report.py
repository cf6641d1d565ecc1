"""`saladpipe report MIX_DIR`: one self-contained HTML file that shows what a training mix holds.

What each source was asked, offered and gave (mix.json); how its rows spread over
hours, groups, voices, engines and durations (rows.parquet); and a few clips of each
speech source to listen to. As in the run report, charts are inline SVG, the style
sheet is inlined and clips are data URIs: no server, no network, and a size bound by
the clip sample, not by the mix. The clips come in from the caller (saladpipe.mix
loads them), so this module reads a mix folder without importing the mix package.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from markupsafe import Markup

from saladpipe import __version__
from saladpipe.audit.charts import BarSeries, Distribution, bar_chart, color, fmt, histogram_chart
from saladpipe.audit.clips import data_uri
from saladpipe.audit.template import render, svg
from saladpipe.data_schemas import tables
from saladpipe.data_schemas.io import read_table, write_text
from saladpipe.data_schemas.mix_manifest import (
    MixManifest,
    MixSourceReport,
    SampleClip,
    row_seconds,
)

# The label of rows whose group, voice or engine their source does not record.
NOT_RECORDED = "(not recorded)"
# A breakdown chart draws this many bars at most: the largest values, then one "other".
_MAX_BARS = 24
_BINS = 30
_SPEECH, _TEXT = "speech", "text"


@dataclass(frozen=True)
class SourceView:
    """One source as the report shows it: mix.json's numbers and what its rows add up to."""

    report: MixSourceReport
    color: str
    seconds: np.ndarray  # each of its rows' seconds; text rows: estimated from characters
    clips: list[tuple[SampleClip, str]]  # each sampled clip with its data URI

    @property
    def speech(self) -> bool:
        return self.report.kind == _SPEECH

    @property
    def hours(self) -> float:
        return float(self.seconds.sum()) / 3600.0


@dataclass(frozen=True)
class Tally:
    """The rows of one source that hold one value (a group, a voice, an engine)."""

    source: str
    value: str
    rows: int
    hours: float

    def size(self, unit: str) -> float:
        """How much of the mix these rows are, in its unit."""
        return self.hours if unit == "hours" else self.rows


@dataclass(frozen=True)
class Breakdown:
    """The mix's rows counted by one column, per source: a stacked bar chart and its table."""

    key: str
    title: str
    chart: Markup
    tallies: list[Tally]


def _tallies(rows: pa.Table, seconds: np.ndarray, key: str, order: Sequence[str]) -> list[Tally]:
    """Rows and hours per (source, value of `key`), sources in mix order, largest first."""
    counted = pa.Table.from_arrays(
        [
            rows.column("source"),
            rows.column(key).fill_null(pa.scalar(NOT_RECORDED)),
            pa.array(seconds),
        ],
        names=["source", "value", "seconds"],
    )
    found = (
        counted.group_by(["source", "value"])
        .aggregate([("seconds", "sum"), ("seconds", "count")])
        .to_pylist()
    )
    tallies = [
        Tally(r["source"], r["value"], r["seconds_count"], r["seconds_sum"] / 3600.0) for r in found
    ]
    position = {name: i for i, name in enumerate(order)}
    return sorted(tallies, key=lambda t: (position[t.source], -t.hours, t.value))


def _breakdown_chart(
    key: str, title: str, tallies: Sequence[Tally], sources: Sequence[SourceView], unit: str
) -> str:
    """Bars per value in the mix's unit, stacked by source; past _MAX_BARS values the
    smallest are summed into one "other" bar."""
    totals: dict[str, float] = defaultdict(float)
    for tally in tallies:
        totals[tally.value] += tally.size(unit)
    ranked = sorted(totals, key=lambda value: (-totals[value], value))
    shown = ranked if len(ranked) <= _MAX_BARS else ranked[: _MAX_BARS - 1]
    folded = len(ranked) - len(shown)
    categories = shown + ([f"other ({folded})"] if folded else [])
    slot = {value: min(i, len(shown)) for i, value in enumerate(ranked)}
    series = []
    for view in sources:
        sizes = [0.0] * len(categories)
        for tally in tallies:
            if tally.source == view.report.name:
                sizes[slot[tally.value]] += tally.size(unit)
        tips = [
            f"{view.report.name}, {category}: {fmt(size)} {unit}"
            for category, size in zip(categories, sizes, strict=True)
        ]
        series.append(
            BarSeries(view.report.name, [size or math.nan for size in sizes], view.color, tips)
        )
    return bar_chart(f"by-{key}", title, categories, series, unit, key)


def _breakdowns(
    rows: pa.Table, seconds: np.ndarray, sources: list[SourceView], unit: str
) -> list[Breakdown]:
    """Rows by group over every source; by voice and engine over the speech sources."""
    order = [view.report.name for view in sources]
    speech = [view for view in sources if view.speech]
    is_speech = pc.equal(rows.column("kind"), pa.scalar(_SPEECH))
    spoken, spoken_seconds = rows.filter(is_speech), seconds[is_speech.to_numpy()]
    parts = [
        ("group", "Groups (domain or cluster) per source", rows, seconds, sources),
        ("voice", "Voices of the speech sources", spoken, spoken_seconds, speech),
        ("engine", "TTS engines of the speech sources", spoken, spoken_seconds, speech),
    ]
    breakdowns = []
    for key, title, table, sizes, shown in parts:
        tallies = _tallies(table, sizes, key, order)
        chart = _breakdown_chart(key, f"{title}, in {unit}", tallies, shown, unit)
        breakdowns.append(Breakdown(key, title, svg(chart), tallies))
    return breakdowns


def _source_charts(sources: Sequence[SourceView], seconds_per_char: float) -> list[Markup]:
    """Hours and rows per source; a text source's hours are drawn apart, as estimates."""
    names = [view.report.name for view in sources]
    estimate = f"text, estimated at {fmt(seconds_per_char)} s per character"
    hours = [
        BarSeries(
            label,
            [view.hours if view.report.kind == kind else math.nan for view in sources],
            color(i),
            [f"{view.report.name}: {fmt(view.hours)} hours ({label})" for view in sources],
        )
        for i, (kind, label) in enumerate(((_SPEECH, "speech"), (_TEXT, estimate)))
    ]
    rows = BarSeries("rows", [float(view.report.rows) for view in sources], color(0))
    return [
        svg(bar_chart("source-hours", "Hours per source", names, hours, "hours", "source")),
        svg(bar_chart("source-rows", "Rows per source", names, [rows], "rows", "source")),
    ]


def _duration_charts(sources: Sequence[SourceView], seconds_per_char: float) -> list[Markup]:
    """Measured durations of the speech sources; the text sources' estimates on their own chart."""

    def groups(speech: bool) -> list[Distribution]:
        return [
            Distribution(view.report.name, view.seconds, view.color)
            for view in sources
            if view.speech == speech
        ]

    charts = [
        histogram_chart(
            "dist-duration", "Clip durations per speech source", groups(True), "seconds", _BINS
        )
    ]
    text = groups(False)
    if text:
        charts.append(
            histogram_chart(
                "dist-text-estimate",
                f"Estimated speech durations of the text sources ({fmt(seconds_per_char)} s "
                "per character)",
                text,
                "seconds (estimated)",
                _BINS,
            )
        )
    return [svg(chart) for chart in charts]


def build_mix_report(mix_dir: Path, out_path: Path, clips: Sequence[SampleClip]) -> Path:
    """Read the mix folder, draw its charts, embed `clips` and write the report atomically."""
    mix_dir = mix_dir.resolve()
    manifest = MixManifest.read(mix_dir)
    rows = read_table(mix_dir / manifest.rows_file, tables.MIX_ROWS)
    seconds = row_seconds(rows, manifest.seconds_per_char)
    names = np.asarray(rows.column("source").to_numpy(zero_copy_only=False))
    sources = [
        SourceView(
            report,
            color(i),
            seconds[names == report.name],
            [(clip, data_uri(clip.wav)) for clip in clips if clip.source == report.name],
        )
        for i, report in enumerate(manifest.sources)
    ]
    context = {
        "manifest": manifest,
        "mix_dir": str(mix_dir),
        "version": __version__,
        "sources": sources,
        "speech_hours": sum(view.hours for view in sources if view.speech),
        "text_hours": sum(view.hours for view in sources if not view.speech),
        "source_charts": _source_charts(sources, manifest.seconds_per_char),
        "breakdowns": _breakdowns(rows, seconds, sources, manifest.unit),
        "duration_charts": _duration_charts(sources, manifest.seconds_per_char),
        "clips": sum(len(view.clips) for view in sources),
        "not_recorded": NOT_RECORDED,
    }
    return write_text(render("mix_report.html", context), out_path)
