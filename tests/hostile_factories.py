"""A hostile-input corpus: every kind of row a careless or hostile source gives, with what
ingest must make of it. The same texts are written as JSONL, plain text and Parquet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

KEPT = "kept"
NAME = object()  # the row's id is its name
NO_ID = object()  # the row has no id field

# Above the 2,999-character repetitive row, so its clip length is what refuses it.
MAX_CHARS = 5000


@dataclass(frozen=True)
class Hostile:
    """One row: its id and text as the source holds them, and what ingest must make of it:
    `KEPT` with the text as stored (`clean`; None: the text as it is), or a quarantine
    reason. `line`, JSONL only, is a line written as it is (broken JSON, bad bytes)."""

    name: str
    text: Any
    expect: str
    clean: str | None = None
    row_id: Any = NAME
    line: bytes | None = None

    def record(self) -> dict[str, Any] | bytes:
        """The JSONL row."""
        if self.line is not None:
            return self.line
        own = (
            {}
            if self.row_id is NO_ID
            else {"id": self.name if self.row_id is NAME else self.row_id}
        )
        return {**own, "text": self.text, "domain": "hostile"}

    @property
    def own_id(self) -> str | None:
        """The id ingest must keep for the JSONL row; None: it has none (or none usable)."""
        if self.row_id is NO_ID or self.expect == "invalid_id":
            return None
        return self.name if self.row_id is NAME else str(self.row_id)

    @property
    def is_text(self) -> bool:
        """A string row that every format holds (a plain-text line, a Parquet string)."""
        return (
            self.line is None
            and self.row_id is NAME
            and isinstance(self.text, str)
            and "\n" not in self.text
            and _encodable(self.text)
        )


@dataclass(frozen=True)
class Expected:
    """Where one written row must end: kept as `text`, or quarantined for `outcome`;
    `given` is the text as written."""

    source: str
    text_id: str
    outcome: str
    text: str | None
    given: Any = None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


REPETITIVE = ("na " * 1000).strip()  # 2,999 characters: at least 59.5 s of speech


def hostile_rows() -> list[Hostile]:
    """Every hostile row."""
    return [
        # Clean text that only looks unusual passes unchanged.
        Hostile("rtl-arabic", "النص العربي يقرأ من اليمين إلى اليسار.", KEPT),
        Hostile("rtl-hebrew", "עברית נכתבת מימין לשמאל.", KEPT),
        Hostile("persian-zwnj", "می\u200cخواهم بروم.", KEPT),
        Hostile("decomposed", "Cafe\u0301 cre\u0300me bru\u0302le\u0301e.", KEPT),
        Hostile("zalgo", "Z\u0351\u0364\u0327a\u0308\u0301l\u0317\u0300g\u0353o\u0300 text.", KEPT),
        Hostile("emoji", "I love pizza 🍕 so much.", KEPT),
        Hostile("emoji-zwj", "Our family 👨\u200d👩\u200d👧 and a cook 👩🏽\u200d🍳.", KEPT),
        Hostile("url", "Read https://example.com/docs?id=3 or mail help@example.org.", KEPT),
        Hostile("numbers", "It weighs 3.5 kg, costs $1,234.56 and runs at 60 km/h.", KEPT),
        Hostile("comparisons", "If x < 3 and y > 2, then List<String> is fine.", KEPT),
        Hostile("huge-number", f"Its serial number is {'9' * 300}.", KEPT),
        # Cleaned: what no reader sees goes, every word stays.
        Hostile("nul", "Nul\x00 bytes\x00 inside.", KEPT, "Nul bytes inside."),
        Hostile(
            "controls",
            "Bell\x07 and\x08 delete\x7f and\x85 next.",
            KEPT,
            "Bell and delete and next.",
        ),
        Hostile(
            "ansi",
            "\x1b[31mRed\x1b[0m alert, \x1b[1mbold\x1b[0m news.",
            KEPT,
            "Red alert, bold news.",
        ),
        Hostile(
            "zero-width", "Zero\u200bwidth\ufeff soft\xadhyphen.", KEPT, "Zerowidth softhyphen."
        ),
        Hostile("bidi", "\u202eReversed\u202c \u200fmarks.", KEPT, "Reversed marks."),
        Hostile("replacement", "Broken\ufffd text.", KEPT, "Broken text."),
        Hostile(
            "ssml",
            '<speak>Hello <break time="1s"/> world, <emphasis>really</emphasis>.</speak>',
            KEPT,
            "Hello world, really.",
        ),
        Hostile(
            "html",
            "<p>Tom &amp; Jerry</p><p>are <b>friends</b>.</p><!-- x --><script>alert(1)</script>",
            KEPT,
            "Tom & Jerry are friends.",
        ),
        # Nothing to speak, or too long for any clip: refused before TTS.
        Hostile("zero-width-only", "\u200b\u200c\u200d\ufeff", "no_speakable_text"),
        Hostile("punctuation-only", "...!?;:—()", "no_speakable_text"),
        Hostile("replacement-only", "\ufffd\ufffd\ufffd", "no_speakable_text"),
        Hostile("emoji-only", "🍕🎉👍🏽", "no_speakable_text"),
        Hostile("ansi-only", "\x1b[2J\x1b[H", "no_speakable_text"),
        Hostile("nul-only", "\x00\x00", "no_speakable_text"),
        Hostile("markup-only", '<speak><break time="2s"/></speak>', "no_speakable_text"),
        Hostile("repetitive", REPETITIVE, "too_long_to_speak"),
        Hostile("huge-row", "word " * 20_000, "too_long"),
        Hostile("huge-zero-width", "\u200b" * 100_000, "no_speakable_text"),
        Hostile("empty", "", "empty"),
        Hostile("whitespace", " \t  ", "whitespace_only"),
        # Rows of other types, and lines that are not rows (JSONL only).
        Hostile("surrogate", "half\ud83d a pair.", KEPT, "half a pair."),
        Hostile("text-number", 42, "text_not_string"),
        Hostile("text-list", ["a", "list"], "text_not_string"),
        Hostile("text-object", {"a": 1}, "text_not_string"),
        Hostile("text-null", None, "text_not_string"),
        Hostile("text-bool", True, "text_not_string"),
        Hostile("id-list", "An id that is a list.", "invalid_id", row_id=[1, 2]),
        Hostile("id-object", "An id that is an object.", "invalid_id", row_id={"k": "v"}),
        Hostile("id-bool", "An id that is a boolean.", "invalid_id", row_id=False),
        Hostile("id-null", "An id that is null.", "invalid_id", row_id=None),
        Hostile("id-float", "An id that is a float.", "invalid_id", row_id=1.5),
        Hostile("id-empty", "An id that is empty.", "invalid_id", row_id=""),
        Hostile("id-int", "An integer id is kept as a string.", KEPT, row_id=12345),
        Hostile("no-id", "A row without an id gets its line.", KEPT, row_id=NO_ID),
        Hostile("dup", "The first row with this id.", KEPT),
        Hostile("dup", "A second row with the same id.", "duplicate_id"),
        _line("missing-text", "missing_text_field", b'{"id": "missing-text", "body": "x"}', NAME),
        _line("array-line", "missing_text_field", b'["not", "an", "object"]'),
        _line("blank-line", "empty", b""),
        _line("broken-json", "invalid_json", b'{"id": "broken-json", "text": "open'),
        _line("deep-json", "invalid_json", b"[" * 50_000),
        _line("big-int-json", "invalid_json", b'{"id": "big", "n": ' + b"1" * 5000 + b"}"),
        _line("bad-utf8", "invalid_utf8", b'{"id": "bad-utf8", "text": "caf\xe9"}'),
    ]


def _line(name: str, expect: str, line: bytes, row_id: Any = NO_ID) -> Hostile:
    return Hostile(name, None, expect, row_id=row_id, line=line)


def write_hostile_corpus(folder: Path, rows: list[Hostile] | None = None) -> list[Expected]:
    """Write `rows` (default: all) into `folder` as JSONL, their string rows also as plain
    text and Parquet, plus Parquet columns of other types; return where each must end."""
    rows = hostile_rows() if rows is None else rows
    folder.mkdir(parents=True, exist_ok=True)
    expected = write_hostile_jsonl(folder / "hostile.jsonl", rows)
    texts = [r for r in rows if r.is_text]
    expected += _write_lines(folder / "hostile-lines.txt", texts)
    expected += _write_table(folder / "hostile-table.parquet", texts)
    expected += _write_types(folder)
    return expected


def _kept_or(row: Hostile, expect: str) -> tuple[str, str | None, Any]:
    """Outcome, stored text and given text, for an `Expected`."""
    if expect != KEPT:
        return expect, None, row.text
    return KEPT, row.text if row.clean is None else row.clean, row.text


def write_hostile_jsonl(path: Path, rows: list[Hostile]) -> list[Expected]:
    """`rows` as JSON lines; where each must end."""
    with path.open("wb") as fh:
        for row in rows:
            record = row.record()
            fh.write(record if isinstance(record, bytes) else json.dumps(record).encode())
            fh.write(b"\n")
    return [
        Expected(f"{path.name}:{n}", row.own_id or f"{path.stem}:{n}", *_kept_or(row, row.expect))
        for n, row in enumerate(rows, start=1)
    ]


def _write_lines(path: Path, rows: list[Hostile]) -> list[Expected]:
    """One text a line; ids are lines, so a repeated id is no duplicate here."""
    lines = [row.text.encode() for row in rows] + [b"bad \xff byte"]
    path.write_bytes(b"\n".join(lines) + b"\n")
    expected = [
        Expected(
            f"{path.name}:{n}",
            f"{path.stem}:{n}",
            *_kept_or(row, KEPT if row.expect == "duplicate_id" else row.expect),
        )
        for n, row in enumerate(rows, start=1)
    ]
    n = len(lines)
    return [*expected, Expected(f"{path.name}:{n}", f"{path.stem}:{n}", "invalid_utf8", None)]


def _write_table(path: Path, rows: list[Hostile]) -> list[Expected]:
    """String rows with their names as ids (prefixed, to stay apart from the JSONL's)."""
    ids = [f"p-{row.name}" for row in rows]
    pq.write_table(pa.table({"id": ids, "text": [row.text for row in rows]}), path)
    return [
        Expected(f"{path.name}:{i}", f"p-{row.name}", *_kept_or(row, row.expect))
        for i, row in enumerate(rows)
    ]


def _write_types(folder: Path) -> list[Expected]:
    """A text column of numbers (each row text_not_string, with its own id), and a binary
    one with bytes that are not UTF-8."""
    numbers, binary = folder / "hostile-numbers.parquet", folder / "hostile-bytes.parquet"
    pq.write_table(pa.table({"id": ["n-1", "n-2"], "text": [3.5, 7.0]}), numbers)
    texts = pa.array([b"fine bytes", b"caf\xe9 au lait"], pa.binary())
    pq.write_table(pa.table({"id": ["b-1", "b-2"], "text": texts}), binary)
    return [
        Expected(f"{numbers.name}:0", "n-1", "text_not_string", None),
        Expected(f"{numbers.name}:1", "n-2", "text_not_string", None),
        Expected(f"{binary.name}:0", "b-1", KEPT, "fine bytes", "fine bytes"),
        Expected(f"{binary.name}:1", "b-2", "invalid_utf8", None),
    ]
