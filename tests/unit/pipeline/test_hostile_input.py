"""Hostile input: every row ends in the corpus or in quarantine, with its own id, a reason
and a detail; what reaches the corpus is clean text; clean text passes unchanged; and a
real run spends no TTS on a text ingest could have refused."""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saladpipe.corpora.wordnet import read_glosses
from saladpipe.data_schemas import RunLayout
from saladpipe.data_schemas.config import ClipChecks, CorpusSection
from saladpipe.pipeline.ingest import (
    IngestStats,
    RawRow,
    Usable,
    ingest,
    spoken_length,
    usable_text,
)
from saladpipe.tts.hygiene import clean_text
from saladpipe.tts.normalize import normalize_text
from tests.factories import write_jsonl
from tests.hostile_factories import (
    KEPT,
    MAX_CHARS,
    Expected,
    write_hostile_corpus,
)


@dataclass(frozen=True)
class Ingested:
    expected: list[Expected]
    stats: IngestStats
    corpus: dict[str, dict[str, Any]]  # corpus rows by source
    quarantine: dict[str, dict[str, Any]]  # quarantine rows by source


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Ingested:
    root = tmp_path_factory.mktemp("hostile")
    expected = write_hostile_corpus(root / "corpus")
    layout = RunLayout(root / "run")
    cfg = CorpusSection(path=root / "corpus", max_chars=MAX_CHARS)
    stats = ingest(cfg, root / "corpus", layout)
    corpus = pa.concat_tables([pq.read_table(p) for p in stats.shards]).to_pylist()
    quarantine = pq.read_table(layout.quarantine("ingest")).to_pylist()
    return Ingested(
        expected,
        stats,
        {r["source"]: r for r in corpus},
        {r["source"]: r for r in quarantine},
    )


def test_every_row_ends_in_the_corpus_or_the_quarantine(hostile: Ingested) -> None:
    sources = [e.source for e in hostile.expected]
    assert len(sources) == len(set(sources)) == hostile.stats.read
    assert not set(hostile.corpus) & set(hostile.quarantine)
    assert set(hostile.corpus) | set(hostile.quarantine) == set(sources)
    assert {"jsonl", "txt", "parquet"} == {s.split(":")[0].rsplit(".", 1)[1] for s in sources}


def test_each_row_ends_as_expected_with_its_own_id_a_reason_and_a_detail(
    hostile: Ingested,
) -> None:
    for e in hostile.expected:
        if e.outcome == KEPT:
            row = hostile.corpus.get(e.source)
            assert row is not None, (e, hostile.quarantine.get(e.source))
            assert (row["text_id"], row["text"]) == (e.text_id, e.text), e
        else:
            row = hostile.quarantine.get(e.source)
            assert row is not None, (e, hostile.corpus.get(e.source))
            assert (row["text_id"], row["reason"]) == (e.text_id, e.outcome), (e, row)
            assert row["detail"], row


def test_no_escape_control_format_or_markup_reaches_the_corpus(hostile: Ingested) -> None:
    for row in hostile.corpus.values():
        text = row["text"]
        assert clean_text(text).text == text, row  # nothing left for any rule
        assert not {"\x1b", "\x00", "\ufffd", "\u200b", "\ufeff", "\xad", "\u202e"} & set(text)
        assert not any(tag in text for tag in ("<speak", "<break", "<p>", "<b>", "<!--", "&amp;"))
        for ch in text:
            assert unicodedata.category(ch) not in ("Cc", "Cs") or ch in "\t\n\r", row


def test_what_cleaning_removed_is_counted_and_logged(
    hostile: Ingested, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    kinds = {"escapes", "controls", "format", "replacement", "noncharacters", "markup"}
    assert set(hostile.stats.cleaned) == kinds
    changed = [e for e in hostile.expected if e.outcome == KEPT and e.text != e.given]
    assert hostile.stats.texts_cleaned == len(changed) > 0
    path = write_jsonl(tmp_path / "c.jsonl", [{"text": "\x1b[1mBold\x1b[0m \u200bnews."}])
    with caplog.at_level(logging.INFO, logger="saladpipe"):
        stats = ingest(CorpusSection(path=path), path, RunLayout(tmp_path / "run"))
    assert stats.cleaned == {"escapes": 2, "format": 1} and stats.texts_cleaned == 1
    assert "ingest: cleaned 1 kept texts, removed escapes: 2, format: 1" in caplog.text


def test_the_whole_builtin_wordnet_corpus_passes_byte_for_byte(tmp_path: Path) -> None:
    glosses = [g for domain in read_glosses().values() for g in domain]
    path = tmp_path / "wordnet.parquet"
    pq.write_table(
        pa.table({"id": [g.synset_id for g in glosses], "text": [g.text for g in glosses]}), path
    )
    stats = ingest(CorpusSection(path=path), path, RunLayout(tmp_path / "run"))
    assert stats.kept == len(glosses) > 50_000 and not stats.quarantined and not stats.cleaned
    stored = [t for p in stats.shards for t in pq.read_table(p).column("text").to_pylist()]
    assert stored == [g.text for g in glosses]


_PRINTABLE = st.characters(
    codec="utf-8", exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn"), exclude_characters="<&\ufffd"
)


@settings(max_examples=300, deadline=None)
@given(st.text(_PRINTABLE, max_size=200))
def test_printable_text_without_markup_or_controls_passes_unchanged(text: str) -> None:
    usable = usable_text(RawRow(text, "t", None, "s"), MAX_CHARS, ClipChecks())
    if isinstance(usable, Usable):
        assert usable.text == text.strip() and not usable.removed
    else:  # only a text without a letter or digit may have nothing to speak
        assert usable.reason in ("empty", "whitespace_only", "no_speakable_text")
        assert not any(ch.isalnum() for ch in text)


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_the_speakable_shortcut_agrees_with_the_normaliser(raw: str) -> None:
    """`spoken_length` skips the normaliser on plain text; it must never change the answer."""
    text = clean_text(raw).text
    assert (spoken_length(text) > 0) == any(ch.isalnum() for ch in normalize_text(text))
