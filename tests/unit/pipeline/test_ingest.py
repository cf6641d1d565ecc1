"""Ingest reads Parquet, JSONL and text; unusable rows are quarantined with a reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from saladpipe.data_schemas import ConfigError, RunLayout
from saladpipe.data_schemas.config import ClipChecks, CorpusSection
from saladpipe.data_schemas.tables import strings
from saladpipe.pipeline.ingest import ingest
from tests.factories import BAD_ROWS, write_jsonl, write_parquet


def _reasons(layout: RunLayout) -> dict[str, str]:
    table = pq.read_table(layout.quarantine("ingest"))
    return dict(zip(strings(table.column("source")), strings(table.column("reason")), strict=True))


def _quarantined(layout: RunLayout) -> dict[str, tuple[str, str, str]]:
    """(text_id, reason, detail) of each quarantined row, by source."""
    rows = pq.read_table(layout.quarantine("ingest")).to_pylist()
    return {r["source"]: (r["text_id"], r["reason"], r["detail"]) for r in rows}


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
    quarantined = _quarantined(layout)
    assert all(detail for _, _, detail in quarantined.values())
    assert quarantined["c.jsonl:11"] == ("bad-field", "missing_text_field", ANY)
    assert quarantined["c.jsonl:12"] == ("t0", "duplicate_id", "first seen at c.jsonl:1")
    corpus = pq.read_table(stats.shards[0])
    assert corpus.column("text_id").to_pylist() == [f"t{i}" for i in range(5)]
    assert corpus.column("domain").to_pylist() == ["d"] * 5


def test_text_file_lines_with_invalid_utf8_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    path.write_bytes(b"first line of text\n\n   \nbad \xff byte\nlast line\n")
    layout = RunLayout(tmp_path / "run")
    stats = ingest(CorpusSection(path=path), path, layout)
    assert stats.kept == 2
    assert _quarantined(layout) == {
        "c.txt:2": ("c:2", "empty", "the text is empty"),
        "c.txt:3": ("c:3", "whitespace_only", "3 whitespace characters, nothing else"),
        "c.txt:4": ("c:4", "invalid_utf8", "byte 4 of the text (0xff): invalid start byte"),
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


def _lines(tmp_path: Path, lines: list[dict[str, Any] | bytes]) -> dict[int, tuple[str, str, str]]:
    """Ingest a good row then `lines`; what the quarantine says of each line, by line number."""
    path = write_jsonl(tmp_path / "c.jsonl", [{"id": "good", "text": "A good row."}, *lines])
    layout = RunLayout(tmp_path / "run")
    ingest(CorpusSection(path=path), path, layout)
    return {int(s.split(":")[1]): row for s, row in _quarantined(layout).items()}


def test_every_reason_comes_with_a_detail_and_the_row_keeps_its_id(tmp_path: Path) -> None:
    quarantined = _lines(
        tmp_path,
        [
            b"{not json",
            {"id": "x1", "body": "a misnamed text field", "lang": "en"},
            b"[1, 2]",
            {"id": "x2", "text": 42},
            {"id": "x3", "text": None},
            {"id": "x4", "text": ["a", "list"]},
            {"id": [1, 2], "text": "an id of the wrong type"},
            {"id": True, "text": "a boolean id"},
            {"id": None, "text": "a null id"},
            {"id": {"k": 1}, "text": "an object id"},
            {"id": "", "text": "an empty id"},
            b'{"id": "\\ud800", "text": "a lone surrogate id"}',
            b'{"id": "x5", "text": "a label no writer takes", "domain": "\\ud800"}',
            b"[" * 100_000,
            b'{"id": "x6", "n": ' + b"1" * 5000 + b"}",
            b'{"id": "x7", "text": "caf\xe9"}',
            {"id": "good", "text": "A second row with the first row's id."},
            {"id": 7, "text": "An integer id is kept as a string."},
        ],
    )
    assert quarantined == {
        2: ("c:2", "invalid_json", ANY),
        3: ("x1", "missing_text_field", "no field 'text'; the row's fields: 'id', 'body', 'lang'"),
        4: ("c:4", "missing_text_field", "the line is an array ([1, 2]), not an object"),
        5: ("x2", "text_not_string", "'text' is a number (42), not a string"),
        6: ("x3", "text_not_string", "'text' is null, not a string"),
        7: ("x4", "text_not_string", '\'text\' is an array (["a", "list"]), not a string'),
        8: (
            "c:8",
            "invalid_id",
            "'id' is an array ([1, 2]); an id is a non-empty string or an integer",
        ),
        9: ("c:9", "invalid_id", ANY),
        10: ("c:10", "invalid_id", ANY),
        11: ("c:11", "invalid_id", ANY),
        12: ("c:12", "invalid_id", ANY),
        13: ("c:13", "invalid_id", "'id' holds a lone surrogate (U+D800) at character 0"),
        14: ("x5", "invalid_label", "'domain' holds a lone surrogate (U+D800) at character 0"),
        15: ("c:15", "invalid_json", ANY),
        16: ("c:16", "invalid_json", ANY),
        17: ("c:17", "invalid_utf8", "byte 25 of the line (0xe9): invalid continuation byte"),
        18: ("good", "duplicate_id", "first seen at c.jsonl:1"),
    }
    details = {line: detail for line, (_, _, detail) in quarantined.items()}
    assert details[2] == "Expecting property name enclosed in double quotes at column 2 (char 1)"
    assert "a boolean (true)" in details[9] and "is null;" in details[10]
    assert "an object" in details[11] and "an empty string" in details[12]
    assert "recursion" in details[15] and "4300 digits" in details[16]


def test_a_parquet_text_column_of_another_type_quarantines_each_row(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "n.parquet", {"id": ["a", "b"], "text": [3, 14]})
    layout = RunLayout(tmp_path / "run")
    with pytest.raises(ConfigError, match="no usable text"):
        ingest(CorpusSection(path=path), path, layout)
    assert _quarantined(layout) == {
        "n.parquet:0": ("a", "text_not_string", "'text' is a number (3), not a string"),
        "n.parquet:1": ("b", "text_not_string", "'text' is a number (14), not a string"),
    }


def test_parquet_ids_binary_texts_and_nulls(tmp_path: Path) -> None:
    texts = pa.array([b"a null id", b"caf\xe9", None, b"fine bytes"], pa.binary())
    path = write_parquet(
        tmp_path / "c.parquet",
        {"id": pa.array([None, 7, 8, 9], pa.int64()), "text": texts},
    )
    layout = RunLayout(tmp_path / "run")
    stats = ingest(CorpusSection(path=path), path, layout)
    assert _quarantined(layout) == {
        "c.parquet:0": ("c:0", "invalid_id", ANY),
        "c.parquet:1": ("7", "invalid_utf8", "byte 3 of the text (0xe9): unexpected end of data"),
        "c.parquet:2": ("8", "text_not_string", "'text' is null, not a string"),
    }
    corpus = pq.read_table(stats.shards[0]).to_pylist()
    assert [(r["text_id"], r["text"]) for r in corpus] == [("9", "fine bytes")]
    floats = write_parquet(tmp_path / "f.parquet", {"id": [2.5], "text": ["a float id"]})
    with pytest.raises(ConfigError, match="no usable text"):
        ingest(CorpusSection(path=floats), floats, RunLayout(tmp_path / "run2"))
    assert _quarantined(RunLayout(tmp_path / "run2"))["f.parquet:0"] == (
        "f:0",
        "invalid_id",
        "'id' is a number (2.5); an id is a non-empty string or an integer",
    )


def test_a_text_no_clip_can_pass_is_refused_before_tts(tmp_path: Path) -> None:
    """3,000 characters take at least 59.5 s at 0.02 s a character, over the 30 s bound."""
    long = ("the same few words again " * 120).strip()
    path = write_jsonl(
        tmp_path / "c.jsonl", [{"id": "long", "text": long}, {"id": "ok", "text": "Short."}]
    )
    cfg = CorpusSection(path=path, max_chars=5000)
    layout = RunLayout(tmp_path / "run")
    stats = ingest(cfg, path, layout)
    assert stats.quarantined == {"too_long_to_speak": 1}
    assert _quarantined(layout)["c.jsonl:1"] == (
        "long",
        "too_long_to_speak",
        "2999 chars to speak: at least 59.5 s at tts.checks.min_seconds_per_char = 0.02 s "
        "(less slack_seconds = 0.5), over tts.checks.max_duration_s = 30 s",
    )
    relaxed = ingest(cfg, path, RunLayout(tmp_path / "run2"), checks=ClipChecks(max_duration_s=60))
    assert relaxed.kept == 2
