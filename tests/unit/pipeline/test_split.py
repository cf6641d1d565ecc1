"""Split rules: by fraction, by words, and by the corpus's own prefix/continuation columns."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.config import CorpusSection, ProbeSection, parse_config
from saladpipe.data_schemas.errors import ConfigError, SchemaError
from saladpipe.data_schemas.io import read_table, write_table
from saladpipe.data_schemas.layout import RunLayout
from saladpipe.pipeline import probe
from saladpipe.pipeline.ingest import ingest, split_columns_of
from tests.factories import write_jsonl

COLUMNS = ProbeSection(split="columns", per_cluster=10)


def test_fraction_and_words_split_at_word_boundaries() -> None:
    text = "one two three four five six seven"
    assert probe.split_text(text, ProbeSection(prefix_fraction=0.3)) == (
        "one two",
        "three four five six seven",
    )
    assert probe.split_text(text, ProbeSection(split="words", prefix_words=5)) == (
        "one two three four five",
        "six seven",
    )
    # Both sides keep a word; a single word has nothing to continue.
    assert probe.split_text(text, ProbeSection(split="words", prefix_words=50))[1] == "seven"
    assert probe.split_text("alone", ProbeSection()) == ("alone", "")


def test_columns_split_where_the_corpus_says() -> None:
    assert probe.split_text("What is it? A cat.", COLUMNS, prefix_chars=11) == (
        "What is it?",
        "A cat.",
    )
    with pytest.raises(SchemaError, match="no split position"):
        probe.split_text("What is it? A cat.", COLUMNS)


def _ingest_and_probe(tmp_path: Path, corpus: Path) -> list[dict[str, object]]:
    layout = RunLayout(tmp_path / "run")
    stats = ingest(CorpusSection(path=corpus), corpus, layout, split_columns_of(COLUMNS))
    texts = pa.concat_tables([read_table(p, tables.CORPUS) for p in stats.shards])
    assignments = pa.table(
        {
            "text_id": texts.column("text_id"),
            "cluster": pa.array([0] * texts.num_rows, pa.int32()),
            "distance": pa.array([0.0] * texts.num_rows, pa.float32()),
        }
    )
    assignment_path = write_table(assignments, tmp_path / "a.parquet", tables.ASSIGNMENTS)
    splits = stats.splits
    assert splits and all(p.is_file() for p in splits)
    pool = probe.load_pool([assignment_path], stats.shards, splits)
    shards = probe.draw_probes(pool, COLUMNS, 0, layout)
    rows = pa.concat_tables([read_table(p, tables.PROBES) for p in shards]).to_pylist()
    return sorted(rows, key=lambda r: str(r["text_id"]))


def test_a_parquet_corpus_with_split_columns_is_probed_as_given(tmp_path: Path) -> None:
    corpus = tmp_path / "qa.parquet"
    pq.write_table(
        pa.table(
            {
                "id": ["a", "b", "c", "d"],
                "prefix": ["What do cats eat?", "  Name a river. ", "Where is Rome?", None],
                "continuation": ["Mostly meat.", "The Nile.", None, "Orphan answer."],
            }
        ),
        corpus,
    )
    rows = _ingest_and_probe(tmp_path, corpus)
    assert [(r["text_id"], r["text"], r["prefix_text"], r["continuation_text"]) for r in rows] == [
        ("a", "What do cats eat? Mostly meat.", "What do cats eat?", "Mostly meat."),
        ("b", "Name a river. The Nile.", "Name a river.", "The Nile."),
        ("c", "Where is Rome?", "Where is Rome?", ""),  # scored as empty_continuation
        ("d", "Orphan answer.", "", "Orphan answer."),  # no prefix to speak: no_audio
    ]


def test_a_jsonl_corpus_with_split_columns_keeps_bad_lines_in_quarantine(tmp_path: Path) -> None:
    corpus = write_jsonl(
        tmp_path / "qa.jsonl",
        [
            {"id": "a", "prefix": "Two plus two", "continuation": "is four."},
            b"{broken json",
            {"id": "b", "prefix": "", "continuation": ""},
            {"id": "c", "prefix": "The sky", "continuation": "is blue."},
        ],
    )
    rows = _ingest_and_probe(tmp_path, corpus)
    assert [(r["text_id"], r["prefix_text"], r["continuation_text"]) for r in rows] == [
        ("a", "Two plus two", "is four."),
        ("c", "The sky", "is blue."),
    ]
    quarantine = read_table(RunLayout(tmp_path / "run").quarantine("ingest"), tables.QUARANTINE)
    assert sorted(tables.strings(quarantine.column("reason"))) == ["empty", "invalid_json"]


def test_split_columns_are_cleaned_apart_so_the_split_stays_between_them(
    tmp_path: Path,
) -> None:
    row = {"id": "a", "prefix": "<b>What</b> is\u200b it?", "continuation": "\x1b[1mA cat.\x1b[0m"}
    rows = _ingest_and_probe(tmp_path, write_jsonl(tmp_path / "qa.jsonl", [row]))
    assert [(r["text"], r["prefix_text"], r["continuation_text"]) for r in rows] == [
        ("What is it? A cat.", "What is it?", "A cat.")
    ]


def test_split_columns_that_cannot_be_read_are_config_errors(tmp_path: Path) -> None:
    layout = RunLayout(tmp_path / "run")
    corpus = tmp_path / "qa.parquet"
    pq.write_table(pa.table({"prefix": ["a"], "answer": ["b"]}), corpus)
    with pytest.raises(ConfigError, match=r"probe\.continuation_column: column 'continuation'"):
        ingest(CorpusSection(path=corpus), corpus, layout, ("prefix", "continuation"))
    text = tmp_path / "plain.txt"
    text.write_text("one line\n")
    with pytest.raises(ConfigError, match="needs a Parquet or JSONL corpus"):
        ingest(CorpusSection(path=text), text, layout, ("prefix", "continuation"))
    with pytest.raises(ConfigError, match=r"needs corpus\.path"):
        parse_config(
            '[corpus]\nbuiltin = "wordnet-domains"\n[probe]\nsplit = "columns"\n', "t", tmp_path
        )
