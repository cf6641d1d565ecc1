"""The select stage on a constructed run folder: gaps, budgets, exclusions, ledger, explain."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from saladpipe.audit.explain import explain
from saladpipe.data_schemas import tables
from saladpipe.data_schemas.config import RunConfig, parse_config
from saladpipe.data_schemas.errors import ConfigError, SaladpipeError
from saladpipe.data_schemas.io import read_table, write_table
from saladpipe.data_schemas.layout import RunLayout
from saladpipe.data_schemas.quarantine import quarantine_table
from saladpipe.pipeline import ledger
from saladpipe.pipeline.select import (
    SelectInputs,
    SelectOutcome,
    read_selection,
    select_round,
    token_counter,
)
from saladpipe.tts.asr import ASR_REJECTED, rejection_detail

N, K, DIM = 60, 3, 16
# Cluster 2 has the largest gap, cluster 0 the smallest.
PROBE_GAPS = {0: [0.10, 0.12, 0.11], 1: [0.20, 0.22], 2: [0.40, 0.38, 0.42]}


@dataclass(frozen=True)
class FakeRun:
    layout: RunLayout
    inputs: SelectInputs
    texts: list[str]
    vectors: np.ndarray

    def config(self, *, asr: bool = False, **select: Any) -> RunConfig:
        """A config with these `[select]` keys; a dict value is a table of its own
        (`exclude={...}`, a strategy's parameters: `salad={"gamma": 2.0}`). `asr`: with
        an ASR check (its model folder is never loaded here)."""
        lines = ['[corpus]\nbuiltin = "wordnet-domains"', f"[cluster]\nk = {K}"]
        if asr:
            lines.append(f'[tts.asr]\nmodel = "{self.layout.root}"')
        lines.append("[select]")
        tables = {key: value for key, value in select.items() if isinstance(value, dict)}
        lines += [f"{key} = {_toml(value)}" for key, value in select.items() if key not in tables]
        for name, table in tables.items():
            lines.append(f"[select.{name}]")
            lines += [f"{key} = {_toml(value)}" for key, value in table.items()]
        return parse_config("\n".join(lines) + "\n", "test", self.layout.root)

    def record(self, config: RunConfig, outcome: SelectOutcome) -> ledger.RoundRecord:
        """Finish the round as the flow does: a shard of every pick, then the ledger."""
        layout = self.layout.for_round(self.layout.round_index)
        selection = read_selection(layout.selection(layout.round_index))
        shard = layout.output_shard(0)
        shard.parent.mkdir(parents=True, exist_ok=True)
        ids = selection.column("text_id").to_pylist()
        pq.write_table(pa.table({"text_id": ids, "duration_s": [1.0] * len(ids)}), shard)
        rows = ledger.ledger_rows(layout, selection, [shard], set())
        files = {
            kind: getattr(self.inputs, kind) for kind in ("corpus", "embeddings", "assignments")
        }
        record = ledger.RoundRecord(
            round=layout.round_index,
            config_hash=config.config_hash(),
            config=config.model_dump(mode="json"),
            strategy=config.select.strategy,
            budget_unit=outcome.unit,
            budget_limit=outcome.limit,
            budget_spent=outcome.spent,
            teacher_id="teacher@1",
            student_id=f"student@{layout.round_index}",
            selected=outcome.selected,
            synthesized=outcome.selected,
            tts_failed=0,
            shards=[str(shard.relative_to(layout.root))],
            inputs=ledger.RoundInputs.of(
                layout.root,
                probes=[],
                clips=self.inputs.clips,
                counts={},
                probe_quarantine=[],
                **files,
            ),
            gap_source=outcome.gap_source,
            speech_rate={},
            notes=outcome.notes,
        )
        return ledger.write_round(
            record,
            rows,
            layout.ledger_texts(layout.round_index),
            layout.ledger_round(layout.round_index),
        )


def _select(
    inputs: SelectInputs, config: RunConfig, layout: RunLayout, tokenizer: Any = None
) -> SelectOutcome:
    """The select stage as the flow calls it: this round's gap estimates where propagation
    wrote them, and the ledger of the rounds before it."""
    shards = len(inputs.assignments)
    estimates = [layout.gap_estimates_shard(i) for i in range(shards)]
    inputs = replace(
        inputs,
        estimates=[p for p in estimates if p.is_file()],
        ledger=ledger.ledger_files(layout, before=layout.round_index),
    )
    return select_round(inputs, config.select, config.cluster, config.run.seed, layout, tokenizer)


def _complete(columns: dict[str, Any], schema: pa.Schema) -> pa.Table:
    """The given columns, plus a plain value for each column of `schema` the test does not
    care about (so that new columns of other stages do not break it)."""
    rows = len(next(iter(columns.values())))
    for field in schema:
        if field.name in columns:
            continue
        if pa.types.is_string(field.type):
            columns[field.name] = [""] * rows
        elif pa.types.is_boolean(field.type):
            columns[field.name] = [False] * rows
        elif field.nullable:
            columns[field.name] = pa.nulls(rows, field.type)
        else:
            columns[field.name] = pa.array([0] * rows).cast(field.type)
    return pa.table(columns)


def _toml(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _fake_run(root: Path, duplicates: bool = False) -> FakeRun:
    """Two shards of 30 texts, 3 clusters (row % 3), scores, probe clips with known durations."""
    layout = RunLayout(root)
    rng = np.random.default_rng(0)
    ids = [f"t{i:03d}" for i in range(N)]
    texts = [" ".join(["word"] * (3 + i % 7)) + f" number {i}" for i in range(N)]
    vectors = rng.standard_normal((N, DIM)).astype(np.float32)
    if duplicates:
        vectors[30:] = vectors[:30] + 1e-4  # rows i and i + 30 are near-identical
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    corpus, embeddings, assignments = [], [], []
    for shard, part in enumerate((slice(0, 30), slice(30, 60))):
        rows = range(N)[part]
        corpus.append(
            write_table(
                pa.table(
                    {
                        "text_id": ids[part],
                        "text": texts[part],
                        "domain": [f"d{i % K}" for i in rows],
                        "source": ["test"] * 30,
                    }
                ),
                layout.corpus_shard(shard),
                tables.CORPUS,
            )
        )
        column = pa.FixedSizeListArray.from_arrays(pa.array(vectors[part].ravel()), DIM)
        embeddings.append(
            write_table(
                pa.table({"text_id": ids[part], "embedding": column}),
                layout.embeddings_shard(shard),
                tables.embeddings_schema(DIM),
            )
        )
        assignments.append(
            write_table(
                pa.table(
                    {
                        "text_id": ids[part],
                        "cluster": pa.array([i % K for i in rows], pa.int32()),
                        "distance": pa.array([0.1] * 30, pa.float32()),
                    }
                ),
                layout.assignments_shard(shard),
                tables.ASSIGNMENTS,
            )
        )
    probe_rows = [
        (ids[cluster + 3 * j], cluster, value)
        for cluster, values in PROBE_GAPS.items()
        for j, value in enumerate(values)
    ]
    scores = write_table(
        _complete(
            {
                "text_id": [r[0] for r in probe_rows],
                "cluster": pa.array([r[1] for r in probe_rows], pa.int32()),
                "misalignment": [r[2] for r in probe_rows],
                "status": ["ok"] * len(probe_rows),
                "teacher_id": ["teacher@1"] * len(probe_rows),
                "student_id": ["student@0"] * len(probe_rows),
            },
            tables.SCORES,
        ),
        layout.scores_shard(0),
        tables.SCORES,
    )
    # Probe clips speak at 0.5 s + 0.05 s per character.
    spoken = ["a" * n for n in (10, 20, 40, 80)]
    clips = write_table(
        _complete(
            {
                "text_id": ["c0", "c1", "c2", "c3"],
                "spoken_text": spoken,
                "audio": [{"bytes": b"", "path": "x.flac"}] * 4,
                "sampling_rate": pa.array([16000] * 4, pa.int32()),
                "duration_s": pa.array([0.5 + 0.05 * len(s) for s in spoken], pa.float32()),
                "tts_engine": ["test"] * 4,
                "tts_voice": ["test"] * 4,
            },
            tables.CLIPS,
        ),
        layout.probe_clips_shard(0),
        tables.CLIPS,
    )
    inputs = SelectInputs(corpus, assignments, embeddings, [scores], [clips])
    return FakeRun(layout, inputs, texts, vectors)


@pytest.fixture
def run(tmp_path: Path) -> FakeRun:
    return _fake_run(tmp_path / "run")


def _selected(layout: RunLayout) -> pa.Table:
    return read_selection(layout.selection(layout.round_index))


def test_salad_selection_records_why_every_text_was_picked(run: FakeRun) -> None:
    config = run.config(strategy="salad", salad={"gamma": 3.0}, budget_texts=12)
    outcome = _select(run.inputs, config, run.layout)
    selection = _selected(run.layout)
    assert outcome.selected == selection.num_rows == 12
    assert outcome.gap_source == "cluster"
    assert any("no per-text gap estimates" in note for note in outcome.notes)
    rows = selection.to_pylist()
    means = {c: float(np.mean(v)) for c, v in PROBE_GAPS.items()}
    stats = read_table(run.layout.cluster_stats, tables.CLUSTER_STATS).to_pylist()
    for rank, row in enumerate(rows):
        assert row["rank"] == rank and row["strategy"] == "salad" and row["selection_round"] == 0
        assert row["cluster_gap"] == pytest.approx(means[row["cluster"]])
        assert row["gap_score"] == pytest.approx(means[row["cluster"]])
        p_c = stats[row["cluster"]]["probability"]
        assert row["probability"] == pytest.approx(p_c / 20)
    expected = np.array([means[c] ** 3 for c in range(K)])
    np.testing.assert_allclose([s["probability"] for s in stats], expected / expected.sum())
    assert [s["eligible_count"] for s in stats] == [20, 20, 20]
    assert sum(s["selected"] for s in stats) == 12
    assert [s["probe_count"] for s in stats] == [3, 2, 3]
    again_root = run.layout.root.parent / "again"
    again = _fake_run(again_root)
    _select(
        again.inputs,
        again.config(strategy="salad", salad={"gamma": 3.0}, budget_texts=12),
        again.layout,
    )
    assert _selected(again.layout).column("text_id").equals(selection.column("text_id"))


def test_top_k_uses_per_text_estimates_when_propagation_wrote_them(run: FakeRun) -> None:
    gaps = np.linspace(0.0, 1.0, N)[::-1]  # t000 has the highest gap
    for shard in range(2):
        part = slice(30 * shard, 30 * shard + 30)
        write_table(
            pa.table(
                {
                    "text_id": [f"t{i:03d}" for i in range(N)][part],
                    "cluster": pa.array([i % K for i in range(N)][part], pa.int32()),
                    "gap": gaps[part],
                    "gap_spread": np.zeros(30),
                    "n_neighbors": pa.array([8] * 30, pa.int32()),
                }
            ),
            run.layout.gap_estimates_shard(shard),
            tables.GAP_ESTIMATES,
        )
    outcome = _select(run.inputs, run.config(strategy="top_k", budget_texts=5), run.layout)
    selection = _selected(run.layout)
    assert outcome.gap_source == "text"
    assert selection.column("text_id").to_pylist() == ["t000", "t001", "t002", "t003", "t004"]
    np.testing.assert_allclose(selection.column("gap_score").to_numpy(), gaps[:5])
    assert selection.column("probability").to_pylist() == [1.0] * 5


def test_audio_hours_budget_uses_the_rate_learned_from_probe_clips(run: FakeRun) -> None:
    hours = 20.0 / 3600
    outcome = _select(
        run.inputs,
        run.config(strategy="random", budget_unit="audio_hours", budget_audio_hours=hours),
        run.layout,
    )
    texts = tables.strings(_selected(run.layout).column("text"))
    estimated = sum(0.5 + 0.05 * len(t) for t in texts)
    assert estimated <= 20.0 + 1e-9 and outcome.spent * 3600 == pytest.approx(estimated)
    assert 20.0 - estimated < 0.5 + 0.05 * max(len(t) for t in run.texts)
    assert any("fitted on 4 clips" in note for note in outcome.notes)


def test_token_budget_counts_with_the_teacher_tokenizer(run: FakeRun) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "word": 1, "number": 2}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]")
    count = token_counter(tokenizer)
    assert count(["word word number 7"]) == [4]
    outcome = _select(
        run.inputs,
        run.config(strategy="salad", budget_unit="tokens", budget_tokens=50),
        run.layout,
        tokenizer,
    )
    texts = tables.strings(_selected(run.layout).column("text"))
    assert sum(count(texts)) == outcome.spent <= 50
    with pytest.raises(ConfigError, match="tokens needs the teacher's tokenizer"):
        _select(run.inputs, run.config(budget_unit="tokens"), run.layout)


def test_exclusions_by_name_file_cluster_and_asr_table(run: FakeRun, tmp_path: Path) -> None:
    names = tmp_path / "exclude.txt"
    names.write_text("t004\n\nt007\nnot-in-pool\n")
    cer = tmp_path / "cer.parquet"
    # t010 fails its own ASR check; cluster 1 (t001, t004, ...) fails on average.
    pq.write_table(
        pa.table({"text_id": ["t010", "t001", "t013", "ghost"], "cer": [0.9, 0.6, 0.5, 0.9]}),
        cer,
    )
    exclude = {
        "texts": ["t003"],
        "texts_file": str(names),
        "clusters": [2],
        "asr_cer_table": str(cer),
        "max_cer": 0.8,
        "max_cluster_cer": 0.5,
    }
    outcome = _select(
        run.inputs, run.config(strategy="random", budget_texts=100, exclude=exclude), run.layout
    )
    picked = set(tables.strings(_selected(run.layout).column("text_id")))
    clusters = {int(t[1:]) % K for t in picked}
    assert clusters == {0}  # 1 failed ASR on average, 2 was named
    assert not picked & {"t003", "t004", "t007", "t010"}
    assert outcome.counts["excluded_texts"] == 4
    skipped = pq.read_table(run.layout.quarantine("select")).to_pylist()
    reasons = {row["text_id"]: (row["stage"], row["reason"]) for row in skipped}
    assert reasons == {
        "t003": ("select", "excluded_text"),
        "t004": ("select", "excluded_text"),
        "t007": ("select", "excluded_text"),
        "t010": ("select", "asr_cer"),
    }
    stats = read_table(run.layout.cluster_stats, tables.CLUSTER_STATS).to_pylist()
    assert stats[0]["excluded_reason"] is None
    assert stats[1]["excluded_reason"].startswith("asr_cluster_cer")
    assert stats[2]["excluded_reason"].startswith("excluded_cluster")
    assert any("cluster 1 excluded" in note for note in outcome.notes)


def _with_probe_cer(run: FakeRun, cer: dict[str, float], rejected: dict[str, float]) -> FakeRun:
    """The run's probe clips measured by the ASR check: `cer` kept, `rejected` quarantined."""
    clips = read_table(run.inputs.clips[0], tables.CLIPS)
    ids = list(cer)
    measured = tables.conform(
        _complete(
            {
                "text_id": ids,
                "spoken_text": ["a b c"] * len(ids),
                "audio": [{"bytes": b"", "path": "x.flac"}] * len(ids),
                "sampling_rate": pa.array([16000] * len(ids), pa.int32()),
                "duration_s": pa.array([1.0] * len(ids), pa.float32()),
                "asr_cer": pa.array(list(cer.values()), pa.float32()),
            },
            tables.CLIPS,
        ),
        tables.CLIPS,
    )
    path = write_table(
        pa.concat_tables([clips, measured]), run.layout.probe_clips_shard(1), tables.CLIPS
    )
    records = [
        {"text_id": t, "source": "probes-00000", "reason": ASR_REJECTED, "text": "a b c",
         "detail": rejection_detail(value, 0.3, "noise")}
        for t, value in rejected.items()
    ]  # fmt: skip
    quarantine = run.layout.quarantine("probe_tts")
    write_table(quarantine_table("probe_tts", records), quarantine, tables.QUARANTINE)
    inputs = replace(run.inputs, clips=[path], probe_quarantine=[quarantine])
    return replace(run, inputs=inputs)


def test_probe_clip_cer_excludes_the_high_cer_cluster_without_a_table(run: FakeRun) -> None:
    # Cluster 2's probes (t002, t005) fail, one so badly that TTS quarantined it; cluster
    # 1's pass; cluster 0 has no measured clip. t005 alone also fails max_cer.
    measured = _with_probe_cer(run, {"t002": 0.5, "t001": 0.1, "t004": 0.2}, {"t005": 0.9})
    config = run.config(
        asr=True,
        strategy="random",
        budget_texts=100,
        exclude={"max_cer": 0.6, "max_cluster_cer": 0.4},
    )
    outcome = _select(measured.inputs, config, run.layout)
    picked = tables.strings(_selected(run.layout).column("text_id"))
    assert {int(t[1:]) % K for t in picked} == {0, 1}
    stats = read_table(run.layout.cluster_stats, tables.CLUSTER_STATS).to_pylist()
    assert [s["cer_measured"] for s in stats] == [0, 2, 2]
    assert stats[0]["cer_mean"] is None and stats[2]["cer_mean"] == pytest.approx(0.7)
    assert stats[2]["excluded_reason"] == (
        "asr_cluster_cer: mean character error rate 0.700 over 2 clips > 0.4"
    )
    assert stats[0]["excluded_reason"] is None and stats[1]["excluded_reason"] is None
    assert (
        "1 clusters excluded for their mean character error rate "
        "(select.exclude.max_cluster_cer)" in outcome.notes
    )
    assert any(n.startswith("clusters [0] have no measured clip") for n in outcome.notes)
    skipped = pq.read_table(run.layout.quarantine("select")).to_pylist()
    assert [(r["text_id"], r["reason"]) for r in skipped] == [("t005", "asr_cer")]
    run.record(config, outcome)
    words = "\n".join(explain(run.layout.root, "t000"))
    assert "SELECTED" in words and "no measured clip, so never excluded" in words
    assert "mean character error rate 0.150 over 2 measured texts" in "\n".join(
        explain(run.layout.root, "t001")
    )


def test_a_user_cer_table_adds_to_the_probe_clips_worst_per_text(
    run: FakeRun, tmp_path: Path
) -> None:
    measured = _with_probe_cer(run, {"t001": 0.1, "t004": 0.1}, {})
    table = tmp_path / "cer.parquet"
    pq.write_table(pa.table({"text_id": ["t001", "t007"], "cer": [0.7, 0.4]}), table)
    config = run.config(exclude={"asr_cer_table": str(table), "max_cluster_cer": 0.3})
    _select(measured.inputs, config, run.layout)
    stats = read_table(run.layout.cluster_stats, tables.CLUSTER_STATS).to_pylist()
    # Cluster 1: t001 at its worse 0.7, t004 at 0.1, t007 at 0.4.
    assert stats[1]["cer_measured"] == 3 and stats[1]["cer_mean"] == pytest.approx(0.4)
    assert stats[1]["excluded_reason"].startswith("asr_cluster_cer")


def test_without_an_asr_check_selection_is_unchanged(run: FakeRun) -> None:
    config = run.config(strategy="random", budget_texts=10)
    outcome = _select(run.inputs, config, run.layout)
    first = _selected(run.layout)
    stats = read_table(run.layout.cluster_stats, tables.CLUSTER_STATS)
    assert stats.column("cer_mean").null_count == stats.column("cer_measured").null_count == K
    assert not any("character error rate" in note for note in outcome.notes)
    # Probe clips without asr_cer (no tts.asr) measure nothing: the same picks.
    unmeasured = _with_probe_cer(run, {}, {})
    _select(unmeasured.inputs, config, run.layout)
    assert _selected(run.layout).equals(first)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"text_id": ["t000"]}, "has no 'cer' column"),
        ({"id": ["t000"], "cer": [0.1]}, "has no 'text_id' column"),
        ({"text_id": ["t000"], "cer": [None]}, "null cer values"),
        ({"text_id": ["t000"], "cer": ["high"]}, "column 'cer'"),
    ],
)
def test_bad_cer_table_is_a_config_error_naming_it(
    run: FakeRun, tmp_path: Path, table: dict[str, list[Any]], message: str
) -> None:
    path = tmp_path / "cer.parquet"
    pq.write_table(pa.table(table), path)
    config = run.config(exclude={"asr_cer_table": str(path)})
    with pytest.raises(ConfigError, match=f"select.exclude.asr_cer_table: .*{message}"):
        _select(run.inputs, config, run.layout)


def test_near_duplicates_are_skipped_with_the_text_they_repeat(tmp_path: Path) -> None:
    run = _fake_run(tmp_path / "dups", duplicates=True)
    config = run.config(strategy="random", budget_texts=40, near_duplicate_threshold=0.99)
    outcome = _select(run.inputs, config, run.layout)
    picked = [int(t[1:]) for t in tables.strings(_selected(run.layout).column("text_id"))]
    assert len({i % 30 for i in picked}) == len(picked) == 30  # one of each pair
    assert outcome.counts["near_duplicates"] > 0
    assert any("ran out" in note for note in outcome.notes)
    skipped = pq.read_table(run.layout.quarantine("select")).to_pylist()
    for row in skipped:
        assert row["reason"] == "near_duplicate"
        other = int(row["detail"].split(" with t")[1][:3])
        assert other % 30 == int(row["text_id"][1:]) % 30 and other in picked


def test_rounds_never_repick_and_explain_says_why(run: FakeRun) -> None:
    config = run.config(strategy="salad", salad={"gamma": 2.0}, budget_texts=15)
    first = _select(run.inputs, config, run.layout)
    run.record(config, first)
    assert ledger.check_next_round(run.layout, config) == 1
    with pytest.raises(ConfigError, match=r"cluster\.k: 4 differs from round 0.s 3"):
        ledger.check_next_round(
            run.layout,
            config.model_copy(update={"cluster": config.cluster.model_copy(update={"k": 4})}),
        )
    second_layout = run.layout.for_round(1)
    round1 = FakeRun(second_layout, run.inputs, run.texts, run.vectors)
    config1 = run.config(strategy="top_k", budget_texts=15)
    outcome = _select(run.inputs, config1, second_layout)
    first_ids = set(tables.strings(_selected(run.layout).column("text_id")))
    second_ids = set(tables.strings(_selected(second_layout).column("text_id")))
    assert len(second_ids) == 15 and not first_ids & second_ids
    assert outcome.counts["ledger_texts"] == 15
    assert second_layout.cluster_stats.name == "cluster_stats-r001.parquet"
    round1.record(config1, outcome)
    assert ledger.read_ledger(run.layout).num_rows == 30
    assert [r.round for r in ledger.finished_rounds(run.layout)] == [0, 1]

    picked0 = sorted(first_ids)[0]
    lines = explain(run.layout.root, picked0)
    assert any(
        line.startswith("round 0 (strategy salad") and "SELECTED at rank" in line for line in lines
    )
    assert any("synthesized into shards/part-00000.parquet" in line for line in lines)
    assert any(
        line.startswith("round 1 (strategy top_k") and "picked in round 0" in line for line in lines
    )
    never = sorted(set(f"t{i:03d}" for i in range(N)) - first_ids - second_ids)[0]
    lines = explain(run.layout.root, never)
    assert sum("not selected" in line for line in lines) == 2
    assert any("drawn by P(c)" in line for line in lines)
    assert any("highest first; the budget ended at gap" in line for line in lines)
    with pytest.raises(SaladpipeError, match="not in the corpus"):
        explain(run.layout.root, "nope")


def test_an_interrupted_round_is_cleared_before_it_is_run_again(run: FakeRun) -> None:
    config = run.config(budget_texts=5)
    run.record(config, _select(run.inputs, config, run.layout))
    layout = run.layout.for_round(1)
    _select(run.inputs, config, layout)
    stale = layout.output_shard(0)
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"half")
    removed = set(ledger.clear_unfinished_round(layout))
    assert {stale, layout.selection(1), layout.cluster_stats} <= removed
    assert run.layout.selection(0).is_file() and run.layout.output_shard(0).is_file()
    with pytest.raises(SaladpipeError, match="round 0"):
        ledger.clear_unfinished_round(run.layout)
    with pytest.raises(ConfigError, match="no finished round"):
        ledger.check_next_round(RunLayout(run.layout.root.parent / "empty"), config)
