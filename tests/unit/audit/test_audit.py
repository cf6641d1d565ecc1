"""Audit queries, listening sets and the report's parts, on small synthetic run folders.

The folders (tests/audit_factories.py) have what a real run may or may not have:
several rounds, per-text gap estimates, ASR and licence columns, two voices, failed and
unfinished syntheses. The end-to-end run and the browser check are in test_report.py.
"""

from __future__ import annotations

import csv
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from saladpipe.audit import (
    AuditFilter,
    ReportOptions,
    RunFolder,
    audit_table,
    build_report,
    markdown,
    summarize,
)
from saladpipe.audit.charts import nice_ticks, viridis
from saladpipe.audit.clips import mime_type, read_clips
from saladpipe.audit.pool_map import build_pool_map
from saladpipe.audit.sampling import sample_per_cluster
from saladpipe.cli import build_parser, main
from saladpipe.data_schemas.errors import ConfigError
from saladpipe.data_schemas.tables import ints, strings
from saladpipe.tts.audio import decode
from tests.audit_factories import RATE, VOICES, BuiltRun, SyntheticRun, build, clip_for


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> BuiltRun:
    """Two rounds (12 + 9 picks), one TTS failure in round 0, one unfinished pick in round 1."""
    return build(tmp_path_factory.mktemp("audit") / "run", SyntheticRun(unfinished=1))


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> BuiltRun:
    """One round, as the first version wrote it: no estimates, no ASR or licence columns,
    seven-column cluster statistics, no embeddings kept."""
    spec = SyntheticRun(
        picks=(10,), estimates=False, extra_columns=False, old_stats=True, embeddings=False
    )
    return build(tmp_path_factory.mktemp("audit") / "bare", spec)


def _index(text_id: str) -> int:
    return int(text_id[1:])


# --- the audit table ---------------------------------------------------------------


def test_audit_table_has_every_pick_with_its_fate(synthetic: BuiltRun) -> None:
    audit = audit_table(RunFolder.open(synthetic.root))
    table = audit.table
    assert table.num_rows == 12 + 9
    assert table.column("text_id").to_pylist() == [f"t{i:03d}" for i in range(21)]
    status = table.column("status").to_pylist()
    assert status[0] == "quarantined"
    assert status[-1] == "missing"
    assert status.count("synthesized") == 19
    failed = table.slice(0, 1).to_pylist()[0]
    assert failed["quarantine_reason"] == "too_quiet" and failed["shard"] is None
    assert any("1 selected texts are in no shard" in note for note in audit.notes)
    assert audit.cer_column == "asr_cer"
    rounds = table.column("selection_round").to_pylist()
    assert rounds == [0] * 12 + [1] * 9
    # provenance comes from the selection; clip columns from the shard of the same round
    assert set(table.column("shard").drop_null().to_pylist()) == {
        "shards/part-00000.parquet",
        "shards/part-r001-00000.parquet",
    }
    assert table.column("tts_license").null_count == 2


def test_clips_are_read_back_from_the_right_rows(synthetic: BuiltRun) -> None:
    """Rows span several row groups (4 rows each); every clip decodes to its text's tone."""
    table = audit_table(RunFolder.open(synthetic.root)).table
    made = table.filter(pc.equal(table.column("status"), pa.scalar("synthesized")))
    refs = list(zip(strings(made.column("shard")), ints(made.column("shard_row")), strict=True))
    clips = read_clips(synthetic.root, refs[::-1])[::-1]
    for text_id, clip in zip(strings(made.column("text_id")), clips, strict=True):
        assert mime_type(clip) == "audio/flac"
        samples, rate = decode(clip)
        expected = clip_for(_index(text_id), 0.4)
        assert rate == RATE and samples.size == expected.size
        assert np.abs(samples - expected).max() < 1e-3


def test_stray_and_repeated_clip_rows_are_noted(tmp_path: Path) -> None:
    """A shard row no selection row names, and a second clip of a pick, are counted."""
    built = build(tmp_path / "run", SyntheticRun(quarantined=0))
    first = pq.read_table(built.root / "shards" / "part-00000.parquet")
    extra = first.take([0, 1])
    ids = strings(extra.column("text_id"))
    extra = extra.set_column(0, "text_id", pa.array(["t059", ids[1]]))
    pq.write_table(extra, built.root / "shards" / "part-00001.parquet")
    audit = audit_table(RunFolder.open(built.root))
    assert audit.table.num_rows == 21
    assert "1 shard or TTS-quarantine rows match no selection row" in audit.notes
    assert any(note.startswith("1 shard or TTS-quarantine rows repeat") for note in audit.notes)
    row = audit.table.filter(pc.equal(audit.table.column("text_id"), pa.scalar(ids[1]))).to_pylist()
    assert [r["shard"] for r in row] == ["shards/part-00000.parquet"]


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        (AuditFilter(clusters=(1,)), lambda r: r["cluster"] == 1),
        (AuditFilter(rounds=(1,)), lambda r: r["selection_round"] == 1),
        (AuditFilter(voices=(VOICES[1],)), lambda r: r["tts_voice"] == VOICES[1]),
        (AuditFilter(gap_min=0.15, gap_max=0.26), lambda r: 0.15 <= r["gap_score"] <= 0.26),
        (AuditFilter(quarantined=True), lambda r: r["status"] == "quarantined"),
        (AuditFilter(quarantined=False), lambda r: r["status"] != "quarantined"),
        (
            AuditFilter(clusters=(0, 2), rounds=(0,), gap_min=0.0),
            lambda r: r["cluster"] in (0, 2) and r["selection_round"] == 0,
        ),
    ],
)
def test_filters_keep_exactly_the_matching_rows(
    synthetic: BuiltRun, selection: AuditFilter, expected: Callable[[dict[str, Any]], bool]
) -> None:
    table = audit_table(RunFolder.open(synthetic.root)).table
    want = [r["text_id"] for r in table.to_pylist() if expected(r)]
    got = selection.apply(table).column("text_id").to_pylist()
    assert got == want and got


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        (AuditFilter(rounds=(5,)), "--round 5: the run has rounds [0, 1]"),
        (AuditFilter(clusters=(3,)), "--cluster 3: the run has clusters 0 to 2"),
        (AuditFilter(voices=("nobody",)), "--voice 'nobody': the run's voices are"),
    ],
)
def test_filters_naming_what_the_run_lacks_are_refused(
    synthetic: BuiltRun, selection: AuditFilter, message: str
) -> None:
    run = RunFolder.open(synthetic.root)
    with pytest.raises(ConfigError, match=re.escape(message)):
        selection.check(audit_table(run).table, run.rounds, 3)


def test_filter_gap_range_must_be_ordered_and_finite() -> None:
    with pytest.raises(ConfigError, match=re.escape("--gap-min 0.5 is above --gap-max 0.1")):
        AuditFilter(gap_min=0.5, gap_max=0.1)
    with pytest.raises(ConfigError, match="--gap-max: must be a finite number"):
        AuditFilter(gap_max=float("nan"))


def test_audit_command_prints_and_writes_csv(
    synthetic: BuiltRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "rows.csv"
    code = main(["audit", str(synthetic.root), "--cluster", "1", "--limit", "2", "--csv", str(out)])
    assert code == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split()[:4] == ["text_id", "round", "rank", "cluster"]
    assert printed[1].startswith("t001 ") and printed[2].startswith("t004 ")
    assert "7 of 21 selected rows match; 2 printed (--limit 0 prints all)" in printed
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["text_id"] for r in rows] == ["t001", "t004", "t007", "t010", "t013", "t016", "t019"]
    assert {"asr_cer", "tts_license", "status", "shard", "gap_score", "text"} <= set(rows[0])
    assert {r["status"] for r in rows} == {"synthesized"}


def test_audit_command_errors_are_one_line(
    synthetic: BuiltRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", str(synthetic.root), "--round", "7"]) == 2
    assert capsys.readouterr().err.strip() == "saladpipe: --round 7: the run has rounds [0, 1]"
    assert main(["audit", str(tmp_path / "nothing")]) == 2
    assert "run folder not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["audit", str(tmp_path / "empty")]) == 2
    assert "holds no selection" in capsys.readouterr().err


# --- listening sets ------------------------------------------------------------------


def test_listen_writes_wav_files_and_their_texts(synthetic: BuiltRun, tmp_path: Path) -> None:
    out = tmp_path / "listen"
    assert main(["listen", str(synthetic.root), str(out), "-n", "4", "--seed", "3"]) == 0
    rows = list(csv.DictReader((out / "texts.csv").open(encoding="utf-8")))
    assert len(rows) == 4
    assert sorted(p.name for p in out.glob("*.wav")) == sorted(r["file"] for r in rows)
    for row in rows:
        samples, rate = sf.read(out / row["file"], dtype="float32")
        info = sf.info(out / row["file"])
        assert info.format == "WAV" and info.subtype == "PCM_16" and rate == RATE
        expected = clip_for(_index(row["text_id"]), 0.4)
        assert samples.size == expected.size and np.abs(samples - expected).max() < 1e-3
        assert row["text"] == f"text {_index(row['text_id'])} about topic {row['cluster']}"
    again = tmp_path / "again"
    assert main(["listen", str(synthetic.root), str(again), "-n", "4", "--seed", "3"]) == 0
    assert (again / "texts.csv").read_bytes() == (out / "texts.csv").read_bytes()


def test_listen_takes_only_synthesized_rows_that_match(
    synthetic: BuiltRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "voice"
    args = ["listen", str(synthetic.root), str(out), "-n", "50", "--voice", VOICES[0]]
    assert main(args) == 0
    rows = list(csv.DictReader((out / "texts.csv").open(encoding="utf-8")))
    table = audit_table(RunFolder.open(synthetic.root)).table.to_pylist()
    expected = {
        r["text_id"] for r in table if r["tts_voice"] == VOICES[0] and r["status"] == "synthesized"
    }
    assert {r["text_id"] for r in rows} == expected
    assert f"a sample of {len(expected)} matching clips" in capsys.readouterr().out
    # a non-empty folder needs --overwrite, which replaces the earlier sample
    assert main(["listen", str(synthetic.root), str(out), "-n", "2"]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert main(["listen", str(synthetic.root), str(out), "-n", "2", "--overwrite"]) == 0
    assert len(list(out.glob("*.wav"))) == 2
    # nothing to listen to: only the TTS-quarantined pick matches
    assert main(["listen", str(synthetic.root), str(tmp_path / "q"), "--quarantined"]) == 2
    assert "no synthesized clip matches" in capsys.readouterr().err


# --- samples, map, charts --------------------------------------------------------------


def test_per_cluster_sample_is_seeded_bounded_and_ordered() -> None:
    clusters = np.repeat(np.arange(5), [10, 0, 3, 50, 1])
    candidates = np.flatnonzero(np.arange(clusters.size) % 7 != 0)
    order = [3, 0, 1, 2, 4]
    first = sample_per_cluster(clusters, candidates, 2, order, np.random.default_rng(1))
    again = sample_per_cluster(clusters, candidates, 2, order, np.random.default_rng(1))
    assert list(first) == order
    assert all(np.array_equal(first[c], again[c]) for c in order)
    for c, rows in first.items():
        available = np.intersect1d(candidates, np.flatnonzero(clusters == c))
        assert rows.size == min(2, available.size)
        assert set(rows.tolist()) <= set(available.tolist())


def test_pool_map_reads_a_bounded_part_of_a_large_pool(tmp_path: Path) -> None:
    built = build(tmp_path / "big", SyntheticRun(texts=600, corpus_shards=30, picks=(40,)))
    run = RunFolder.open(built.root)
    selected = audit_table(run).table.select(["text_id", "selection_round"])
    args = (run.embeddings(), run.assignments(), run.gap_estimates(0), np.array([0.1, 0.3, 0.2]))
    pool_map = build_pool_map(*args, selected, run.centroids(), 20, 10, np.random.default_rng(0))
    assert pool_map is not None
    # 20 points x 4 oversampling = 80 rows = 4 files of 20, but at least 8 row groups
    assert pool_map.files_read == 8 and pool_map.files_total == 30
    assert pool_map.rows_read == 160
    assert pool_map.xy.shape[1] == 2 and np.isfinite(pool_map.xy).all()
    assert pool_map.centroids is not None and pool_map.centroids.shape == (3, 2)
    # every point carries its own per-text gap estimate
    index = [_index(t) for t in pool_map.text_id]
    assert np.allclose(pool_map.gap, built.gaps[0][index])
    assert np.array_equal(pool_map.cluster, built.cluster[index])
    assert (pool_map.selected_round >= 0).sum() == sum(i < 40 for i in index)
    again = build_pool_map(*args, selected, run.centroids(), 20, 10, np.random.default_rng(0))
    assert again is not None and np.array_equal(pool_map.xy, again.xy)


@settings(max_examples=200, deadline=None)
@given(
    st.floats(-1e6, 1e6, allow_nan=False),
    st.floats(1e-9, 1e6, allow_nan=False),
)
def test_nice_ticks_cover_the_range_in_even_steps(lo: float, span: float) -> None:
    hi = lo + span
    ticks = nice_ticks(lo, hi)
    assert ticks[0] <= lo + 1e-9 * max(1.0, abs(lo)) and ticks[-1] >= hi - 1e-9 * max(1.0, abs(hi))
    steps = np.diff(ticks)
    assert len(ticks) >= 2 and np.all(steps > 0)
    assert np.allclose(steps, steps[0], rtol=1e-6)
    assert len(ticks) <= 12


def test_viridis_runs_from_purple_to_yellow_and_greys_missing() -> None:
    assert viridis(0.0) == "#440154" and viridis(1.0) == "#fde725"
    assert viridis(float("nan")) == "#c8c8c8"
    assert viridis(-3) == viridis(0.0) and viridis(7) == viridis(1.0)


# --- the report on synthetic runs ------------------------------------------------------


def _report(run: BuiltRun, out: Path, **options: int) -> str:
    build_report(run.root, out, ReportOptions(**options))
    return out.read_text(encoding="utf-8")


def test_report_uses_rounds_estimates_asr_and_licences_when_present(
    synthetic: BuiltRun, tmp_path: Path
) -> None:
    html = _report(synthetic, tmp_path / "r.html")
    charts = re.findall(r'<svg class="chart" data-chart="([a-z-]+)"', html)
    assert charts == [
        "cluster-gap",
        "cluster-share",
        "cluster-selected",
        "pool-map",
        "dist-gap",
        "dist-duration",
        "dist-cer",
        "rounds-gap",
    ]
    assert "not measured in this run" not in html
    assert "per-text gap estimate, round 1" in html
    # the movers table: cluster 0 rose by 0.05 and cluster 1 fell by 0.05 between rounds
    assert re.search(
        r"<td class=\"num\">0</td><td class=\"num\">0.1</td>"
        r"<td class=\"num\">0.15</td><td class=\"num\">0.05</td>",
        html,
    )
    assert "tts_license" in html and "CC-BY-4.0" in html
    # the probe clips' CER per cluster, with the cluster it excluded
    head = re.search(r'<table id="cluster-table">\s*<thead>(.*?)</thead>', html, re.S)
    assert head is not None and re.findall(r"<th[^>]*>(\w+)</th>", head.group(1))[-3:] == [
        "excluded_reason",
        "cer_mean",
        "cer_measured",
    ]
    assert 'over 3 clips &gt; 0.5</td><td class="num">0.62</td><td class="num">3</td>' in html
    # two sampled rows per cluster, each with its clip (6 of the 48 allowed)
    assert html.count("<audio ") == 6
    assert "1 selected texts are in no shard and no TTS quarantine" in html
    assert "too_quiet" in html


def test_report_says_what_a_bare_run_did_not_measure(bare: BuiltRun, tmp_path: Path) -> None:
    html = _report(bare, tmp_path / "r.html")
    for note in (
        "per-text gap estimates: none in this run",
        "map of the corpus: the run folder keeps no embeddings",
        "gap across rounds: the run has one selection round",
        "ASR character error rate: not measured in this run",
        "voice licence: not recorded in this run&#39;s shards",
    ):
        assert note in html, note
    charts = re.findall(r'data-chart="([a-z-]+)"', html)
    assert charts == [
        "cluster-gap",
        "cluster-share",
        "cluster-selected",
        "dist-gap",
        "dist-duration",
    ]
    assert html.count("<audio ") == 6
    assert "cer_mean" not in html


def test_report_clip_budget_and_seed(synthetic: BuiltRun, tmp_path: Path) -> None:
    html = _report(synthetic, tmp_path / "a.html", max_clips=4, rows_per_cluster=3)
    assert html.count("<audio ") == 4
    assert html.count("Clip not embedded: the report's clip budget (4) is spent") == 5
    same = _report(synthetic, tmp_path / "b.html", max_clips=4, rows_per_cluster=3)
    assert same == html  # same run, options and seed: the same file, byte for byte
    other = _report(synthetic, tmp_path / "c.html", max_clips=4, rows_per_cluster=3, seed=9)
    assert other != html
    with pytest.raises(ConfigError, match="--rows-per-cluster: must be at least 1"):
        ReportOptions(rows_per_cluster=0)


def test_report_command_writes_the_file_and_checks_its_options(
    synthetic: BuiltRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(synthetic.root), "-o", str(tmp_path / "r.html")]) == 0
    out = capsys.readouterr().out
    assert re.fullmatch(r"wrote \S+r\.html \(\d+\.\d MB, 6 clips, 21 selected rows\) in .*\n", out)
    assert main(["report", str(synthetic.root), "--max-clips", "-1"]) == 2
    assert capsys.readouterr().err.strip() == "saladpipe: --max-clips: must be at least 0 (got -1)"
    assert not (synthetic.root / "report.html").exists()


def test_a_round_that_picked_nothing_still_reports(tmp_path: Path) -> None:
    built = build(tmp_path / "zero", SyntheticRun(picks=(0,), quarantined=0))
    run = RunFolder.open(built.root)
    summary = summarize(run, audit_table(run))
    assert summary.headline["selected"] == 0 and summary.headline["audio hours"] == 0
    assert "| selected | 0 |" in markdown(summary, "x")
    html = _report(built, tmp_path / "r.html")
    assert "<audio " not in html and "No synthesized row of this cluster." in html
    assert 'data-chart="pool-map"' in html


def test_report_escapes_corpus_text(tmp_path: Path) -> None:
    odd = 'Tag: <script>alert("x")</script> & <b>bold</b>'
    built = build(tmp_path / "odd", SyntheticRun(odd_text=odd, quarantined=0))
    html = _report(built, tmp_path / "r.html", rows_per_cluster=10)  # every pick of cluster 0
    assert "<script>alert" not in html and "<b>bold" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in html
    assert html.count("<script>") == 1  # the report's own script


def test_report_explain_command_is_one_the_cli_accepts(synthetic: BuiltRun, tmp_path: Path) -> None:
    html = _report(synthetic, tmp_path / "r.html")
    commands = re.findall(r"<code>(saladpipe explain [^<]+)</code>", html)
    assert commands
    for command in commands:
        argv = shlex.split(command.replace("&#39;", "'"))[1:]
        args = build_parser().parse_args(argv)
        assert args.command == "explain" and args.run_dir == synthetic.root
        assert re.fullmatch(r"t\d{3}|TEXT_ID", args.text_id)


def test_summary_markdown_lists_counts_and_largest_gaps(synthetic: BuiltRun) -> None:
    run = RunFolder.open(synthetic.root)
    summary = summarize(run, audit_table(run))
    assert summary.headline["selected"] == 21 and summary.headline["synthesized"] == 19
    assert summary.headline["TTS quarantined"] == 1 and summary.headline["voices"] == 2
    assert [row["cluster"] for row in summary.clusters] == [0, 1, 2]
    text = markdown(summary, "runs/x")
    lines = text.splitlines()
    first = lines.index("| cluster | gap mean | gap std | probes | pool share | P(c) | selected |")
    # round 1's gaps: cluster 1 0.25, cluster 2 0.2, cluster 0 0.15
    assert [line.split("|")[1].strip() for line in lines[first + 2 : first + 5]] == ["1", "2", "0"]
    assert "`saladpipe report runs/x`" in text
    assert text.startswith("# saladpipe run `synthetic`")
