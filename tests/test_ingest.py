"""Ingest reads Parquet, JSONL and text; unusable rows are quarantined with a reason."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from saladpipe.data_schemas import ConfigError, RunLayout
from saladpipe.data_schemas.config import CorpusSection
from saladpipe.pipeline.ingest import ingest
from tests.factories import BAD_ROWS, write_jsonl, write_parquet


def _reasons(layout: RunLayout) -> dict[str, str]:
    table = pq.read_table(layout.quarantine("ingest"))
    return dict(
        zip(table.column("source").to_pylist(), table.column("reason").to_pylist(), strict=True)
    )


def test_jsonl_good_and_bad_rows(tmp_path: Path) -> None:
    good = [{"id": f"t{i}", "text": f"text number {i}", "domain": "d"} for i in range(5)]
    path = write_jsonl(tmp_path / "c.jsonl", [*good, *(r for r, _ in BAD_ROWS), good[0]])
    layout = RunLayout(tmp_path / "run")
    stats = ingest(CorpusSection(path=path, max_chars=300), path, layout)
    assert stats.read == 5 + len(BAD_ROWS) + 1
    assert stats.kept == 5
    expected = {reason: 1 for _, reason in BAD_ROWS} | {"duplicate_id": 1}
    assert stats.quarantined == expected
    assert sorted(_reasons(layout).values()) == sorted(expected)
    corpus = pq.read_table(stats.shards[0])
    assert corpus.column("text_id").to_pylist() == [f"t{i}" for i in range(5)]
    assert corpus.column("domain").to_pylist() == ["d"] * 5


def test_text_file_lines_with_invalid_utf8_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    path.write_bytes(b"first line of text\n\n   \nbad \xff byte\nlast line\n")
    layout = RunLayout(tmp_path / "run")
    stats = ingest(CorpusSection(path=path), path, layout)
    assert stats.kept == 2
    assert _reasons(layout) == {
        "c.txt:2": "empty",
        "c.txt:3": "whitespace_only",
        "c.txt:4": "invalid_utf8",
    }
    ids = pq.read_table(stats.shards[0]).column("text_id").to_pylist()
    assert ids == ["c:1", "c:5"]


def test_parquet_with_ids_and_shard_rotation(tmp_path: Path) -> None:
    texts = [f"sentence {i} of the corpus" for i in range(25)] + ["x" * 50]
    path = write_parquet(tmp_path / "c.parquet", {"id": list(range(26)), "text": texts})
    layout = RunLayout(tmp_path / "run")
    stats = ingest(CorpusSection(path=path, shard_rows=10, max_chars=40), path, layout)
    assert [pq.read_metadata(p).num_rows for p in stats.shards] == [10, 10, 5]
    assert stats.quarantined == {"too_long": 1}
    assert (
        pq.read_table(layout.quarantine("ingest")).column("detail")[0].as_py()
        == "50 chars, limit 40"
    )


def test_folder_of_files_and_missing_text_column(tmp_path: Path) -> None:
    folder = tmp_path / "corpus"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", [{"text": "alpha beta gamma"}])
    write_jsonl(folder / "b.jsonl", [{"text": "delta epsilon"}])
    stats = ingest(CorpusSection(path=folder), folder, RunLayout(tmp_path / "run"))
    assert stats.kept == 2
    bad = write_parquet(tmp_path / "bad.parquet", {"body": ["no text column"]})
    with pytest.raises(ConfigError, match="column 'text' not in"):
        ingest(CorpusSection(path=bad), bad, RunLayout(tmp_path / "run2"))


def test_a_corpus_with_no_usable_row_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    path.write_text("\n \n")
    with pytest.raises(ConfigError, match="no usable text"):
        ingest(CorpusSection(path=path), path, RunLayout(tmp_path / "run"))
