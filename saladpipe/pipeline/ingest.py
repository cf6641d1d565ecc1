"""Ingest: read a text corpus (Parquet, JSONL or plain text) into validated corpus shards.

Every text is cleaned first (`tts/hygiene.py`: terminal escapes, controls, invisible
format characters, U+FFFD, noncharacters and markup are removed and counted; clean
text passes unchanged). Rows that cannot be used go to the ingest quarantine with
their own id where they carry one, a reason and a detail saying what exactly is
wrong: empty, whitespace only, invalid UTF-8, not valid JSON, missing or non-text
field, an id or label of the wrong type, too long, nothing speakable left, too long
for any clip to pass the TTS checks, duplicate id. Nothing is dropped silently.
"""

from __future__ import annotations

import json
import logging
import math
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import UnionType
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.config import ClipChecks, CorpusSection, ProbeSection
from saladpipe.data_schemas.errors import ConfigError
from saladpipe.data_schemas.io import read_table, write_table
from saladpipe.data_schemas.layout import RunLayout
from saladpipe.data_schemas.quarantine import quarantine_table
from saladpipe.pipeline.stage import Stage
from saladpipe.tts.hygiene import clean_text
from saladpipe.tts.normalize import normalize_text

logger = logging.getLogger("saladpipe")

_SUFFIXES = {"parquet": (".parquet",), "jsonl": (".jsonl", ".json"), "text": (".txt", ".text")}
_DEFAULT_CHECKS = ClipChecks()
# How many of a row's keys a detail lists.
_KEYS_SHOWN = 12


@dataclass(frozen=True)
class RawRow:
    """One row as read from a source, before validation.

    A row the reader could not use carries its `problem` (a quarantine reason) and a
    `detail`; its `text` is then what was read (bytes when undecodable), for the record.
    """

    text: str | bytes | None
    text_id: str
    domain: str | None
    source: str
    problem: str | None = None
    detail: str = ""
    # Where the continuation starts, for a corpus read with split columns.
    prefix_chars: int | None = None


@dataclass
class IngestStats:
    """What ingest read, kept and quarantined (reasons counted by name), and what
    cleaning removed from the kept texts, by kind (`hygiene.py`), and from how many."""

    read: int = 0
    kept: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    cleaned: dict[str, int] = field(default_factory=dict)
    texts_cleaned: int = 0
    shards: list[Path] = field(default_factory=list)
    # Where each text of a two-column corpus splits, beside its shard (none otherwise).
    splits: list[Path] = field(default_factory=list)
    quarantine_path: Path | None = None

    def counts(self) -> dict[str, int]:
        """What the manifest counts of ingest."""
        return {
            "corpus_rows_read": self.read,
            "corpus_texts": self.kept,
            "quarantined_ingest": sum(self.quarantined.values()),
            "texts_cleaned": self.texts_cleaned,
            **{f"cleaned_{kind}": n for kind, n in sorted(self.cleaned.items())},
        }


def detect_format(path: Path, configured: str) -> str:
    """The configured format, or the one the file suffix names."""
    if configured != "auto":
        return configured
    for name, suffixes in _SUFFIXES.items():
        if path.suffix.lower() in suffixes:
            return name
    raise ConfigError(
        f"config error: corpus.format: cannot tell the format of {path} from its suffix; "
        "set corpus.format to parquet, jsonl or text"
    )


def input_files(path: Path, configured_format: str) -> list[Path]:
    """A corpus path is a file, or a folder whose files of the format are read in name order."""
    if path.is_file():
        return [path]
    suffixes = (
        tuple(s for group in _SUFFIXES.values() for s in group)
        if configured_format == "auto"
        else _SUFFIXES[configured_format]
    )
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
    if not files:
        raise ConfigError(f"config error: corpus.path: no corpus files in folder {path}")
    return files


@dataclass(frozen=True)
class Rejected:
    """Why a row cannot be used: a quarantine reason and what exactly is wrong."""

    reason: str
    detail: str


_KINDS: tuple[tuple[type | UnionType, str], ...] = (
    (bool, "a boolean"),  # before int: a bool is an int to Python, not to JSON
    (int | float, "a number"),
    (str, "a string"),
    (list, "an array"),
    (dict, "an object"),
)


def _described(value: Any) -> str:
    """A value as its JSON kind and a short rendering: 'an array ([1, 2])', 'null'."""
    if value is None:
        return "null"
    kind = next((k for t, k in _KINDS if isinstance(value, t)), f"a {type(value).__name__}")
    shown = json.dumps(value, default=str)
    return f"{kind} ({shown[:60]}{'...' if len(shown) > 60 else ''})"


def _shown(value: Any) -> str | bytes | None:
    """A value as the quarantine records it."""
    return (
        value if value is None or isinstance(value, str | bytes) else json.dumps(value, default=str)
    )


def _decoded(raw: bytes, what: str) -> str | Rejected:
    """UTF-8 text, or where it is not."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejected(
            "invalid_utf8", f"byte {exc.start} of {what} (0x{raw[exc.start]:02x}): {exc.reason}"
        )


def _lone_surrogate(value: str) -> str | None:
    """Where a string holds a lone surrogate (a JSON escape can smuggle one in): it is not
    Unicode text and cannot be written as UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"a lone surrogate (U+{ord(value[exc.start]):04X}) at character {exc.start}"
    return None


def _given_id(value: Any, name: str) -> str | Rejected:
    """The row's own id as a string: a non-empty string (or UTF-8 bytes) or an integer."""
    if isinstance(value, bytes):
        value = _decoded(value, "the id")
        if isinstance(value, Rejected):
            return Rejected("invalid_id", f"{name!r}: {value.detail}")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.strip():
        surrogate = _lone_surrogate(value)
        return value if surrogate is None else Rejected("invalid_id", f"{name!r} holds {surrogate}")
    what = "an empty string" if isinstance(value, str) else _described(value)
    return Rejected("invalid_id", f"{name!r} is {what}; an id is a non-empty string or an integer")


def _row(
    text: Any,
    text_id: str | Rejected,
    label: Any,
    source: str,
    fallback_id: str,
    cfg: CorpusSection,
) -> RawRow:
    """A row from the values a reader found, checked for what every format shares: its id
    (`fallback_id` where it has none), its label, then its text (`Rejected` when the
    reader found none)."""
    if isinstance(text_id, Rejected):
        return RawRow(_shown(text), fallback_id, None, source, text_id.reason, text_id.detail)
    domain = None if label is None else str(label)
    surrogate = None if domain is None else _lone_surrogate(domain)
    if surrogate is not None:
        detail = f"{cfg.label_field!r} holds {surrogate}"
        return RawRow(_shown(text), text_id, None, source, "invalid_label", detail)
    if isinstance(text, bytes):
        decoded = _decoded(text, "the text")
        if isinstance(decoded, Rejected):
            return RawRow(text, text_id, domain, source, decoded.reason, decoded.detail)
        text = decoded
    if isinstance(text, Rejected):  # the reader found no text
        return RawRow(None, text_id, domain, source, text.reason, text.detail)
    if not isinstance(text, str):
        detail = f"{cfg.text_field!r} is {_described(text)}, not a string"
        return RawRow(_shown(text), text_id, domain, source, "text_not_string", detail)
    return RawRow(text, text_id, domain, source)


def read_parquet(path: Path, cfg: CorpusSection) -> Iterator[RawRow]:
    """Rows of a Parquet file, read in batches; the text column may be string or binary
    (any other type gives each row `text_not_string`)."""
    parquet = pq.ParquetFile(path)
    names = parquet.schema_arrow.names
    if cfg.text_field not in names:
        raise ConfigError(
            f"config error: corpus.text_field: column {cfg.text_field!r} not in {path} "
            f"(columns: {', '.join(names)})"
        )
    columns = [cfg.text_field]
    id_field = cfg.id_field if cfg.id_field in names else None
    label_field = cfg.label_field if cfg.label_field in names else None
    columns += [c for c in (id_field, label_field) if c is not None]
    row = 0
    for batch in parquet.iter_batches(columns=columns, batch_size=8192):
        data = batch.to_pydict()
        for i, text in enumerate(data[cfg.text_field]):
            fallback_id = f"{path.stem}:{row}"
            text_id = _given_id(data[id_field][i], id_field) if id_field else fallback_id
            label = data[label_field][i] if label_field else None
            yield _row(text, text_id, label, f"{path.name}:{row}", fallback_id, cfg)
            row += 1


def read_jsonl(path: Path, cfg: CorpusSection) -> Iterator[RawRow]:
    """Rows of a JSON-lines file, one object a line; a line that is not one is a problem row."""
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            yield _jsonl_row(raw, f"{path.name}:{lineno}", f"{path.stem}:{lineno}", cfg)


def _jsonl_row(raw: bytes, source: str, fallback_id: str, cfg: CorpusSection) -> RawRow:
    """One line as a row; its own id even when its text is missing or of another type."""
    line = _decoded(raw, "the line")
    if isinstance(line, Rejected):
        return RawRow(raw, fallback_id, None, source, line.reason, line.detail)

    def problem(reason: str, detail: str) -> RawRow:
        return RawRow(line, fallback_id, None, source, reason, detail)

    if not line.strip():
        return problem("empty", "a blank line")
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return problem("invalid_json", f"{exc.msg} at column {exc.colno} (char {exc.pos})")
    except (ValueError, RecursionError) as exc:  # an integer of thousands of digits; deep nesting
        return problem("invalid_json", str(exc))
    if not isinstance(record, dict):
        return problem("missing_text_field", f"the line is {_described(record)}, not an object")
    id_field = cfg.id_field
    text_id = (
        _given_id(record[id_field], id_field)
        if id_field is not None and id_field in record
        else fallback_id
    )
    text = record[cfg.text_field] if cfg.text_field in record else _missing(cfg.text_field, record)
    label = record.get(cfg.label_field) if cfg.label_field else None
    row = _row(text, text_id, label, source, fallback_id, cfg)
    return row if row.problem is None else replace(row, text=line)  # the line says it all


def _missing(name: str, record: dict[str, Any]) -> Rejected:
    """No text field: name the fields the row has, so a misnamed field shows."""
    keys = [repr(k) for k in record]
    shown = ", ".join(keys[:_KEYS_SHOWN]) or "none"
    if len(keys) > _KEYS_SHOWN:
        shown += f" and {len(keys) - _KEYS_SHOWN} more"
    return Rejected("missing_text_field", f"no field {name!r}; the row's fields: {shown}")


def read_text(path: Path, cfg: CorpusSection) -> Iterator[RawRow]:
    """One text a line; the id is file stem and line number."""
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            text_id, source = f"{path.stem}:{lineno}", f"{path.name}:{lineno}"
            yield _row(raw.rstrip(b"\r\n"), text_id, None, source, text_id, cfg)


READERS = {"parquet": read_parquet, "jsonl": read_jsonl, "text": read_text}


@dataclass(frozen=True)
class Usable:
    """A row's text as stored (cleaned and stripped), where its continuation starts, and
    what cleaning removed from it, by kind."""

    text: str
    prefix_chars: int | None
    removed: Counter[str]


def usable_text(row: RawRow, max_chars: int, checks: ClipChecks | None = None) -> Usable | Rejected:
    """The row's clean text, or why it cannot be used. With `checks` the text is meant for
    speech: it must have something to speak, and a clip short enough to pass them."""
    if row.problem is not None:
        return Rejected(row.problem, row.detail)
    assert isinstance(row.text, str)  # readers decode every row they pass without a problem
    if not row.text:
        return Rejected("empty", "the text is empty")
    if not row.text.strip():
        return Rejected("whitespace_only", f"{len(row.text)} whitespace characters, nothing else")
    usable = _cleaned(row.text, row.prefix_chars)
    if not usable.text:
        return Rejected(
            "no_speakable_text", f"nothing left after removing {_kinds(usable.removed)}"
        )
    if len(usable.text) > max_chars:
        return Rejected("too_long", f"{len(usable.text)} chars, limit {max_chars}")
    return usable if checks is None else _unspeakable(usable, checks) or usable


def _cleaned(text: str, prefix_chars: int | None) -> Usable:
    """Cleaned and stripped; a text of two columns has each cleaned on its own, so that
    its split stays between them."""
    if prefix_chars is None:
        cleaned = clean_text(text)
        return Usable(cleaned.text.strip(), None, Counter(cleaned.removed))
    prefix, rest = clean_text(text[:prefix_chars]), clean_text(text[prefix_chars:])
    head, tail = prefix.text.strip(), rest.text.strip()
    removed = Counter(prefix.removed) + Counter(rest.removed)
    return Usable(f"{head} {tail}".strip(), len(head), removed)


def _unspeakable(usable: Usable, checks: ClipChecks) -> Rejected | None:
    """Why TTS could never give this text a passing clip: nothing to speak once normalised
    (punctuation, pictographs), or more characters than `max_duration_s` holds even at
    `min_seconds_per_char`."""
    fastest = checks.min_seconds_per_char
    bound = (checks.max_duration_s + checks.slack_seconds) / fastest if fastest else math.inf
    chars = spoken_length(usable.text, bound)
    if chars == 0:
        removed = f" (cleaning removed {_kinds(usable.removed)})" if usable.removed else ""
        detail = f"no letter or digit to speak in {usable.text[:60]!r}{removed}"
        return Rejected("no_speakable_text", detail)
    if chars <= bound:
        return None
    return Rejected(
        "too_long_to_speak",
        f"{chars} chars to speak: at least {chars * fastest - checks.slack_seconds:.1f} s at "
        f"tts.checks.min_seconds_per_char = {fastest:g} s "
        f"(less slack_seconds = {checks.slack_seconds:g}), over "
        f"tts.checks.max_duration_s = {checks.max_duration_s:g} s",
    )


def spoken_length(text: str, bound: float = math.inf) -> int:
    """How many characters of `text` an engine reads: as written (spaces collapsed) or
    normalised (English rules), whichever is fewer, so that no text some engine could
    speak in time is refused; 0 when normalising leaves no letter or digit.

    The normaliser runs only where it can change the answer: a text with a letter or
    digit keeps one, as the normaliser removes none except in markup and entities (`<`,
    `&`) and NFKC's presentation forms (folded here); a text without may gain words
    (`%`); and its length matters only past `bound`.
    """
    folded = unicodedata.normalize("NFKC", text)
    collapsed = len(" ".join(text.split()))
    plain = "<" not in folded and "&" not in folded and any(ch.isalnum() for ch in folded)
    if plain and collapsed <= bound:
        return collapsed
    spoken = normalize_text(text)
    return min(collapsed, len(spoken)) if any(ch.isalnum() for ch in spoken) else 0


def _kinds(removed: Counter[str]) -> str:
    """'format: 2, escapes: 1': what cleaning removed, by kind, commonest first."""
    return ", ".join(f"{kind}: {n}" for kind, n in removed.most_common())


class _ShardWriter:
    """Buffers validated rows and writes a corpus shard every `shard_rows` rows."""

    def __init__(self, layout: RunLayout, shard_rows: int) -> None:
        self.layout = layout
        self.shard_rows = shard_rows
        self.rows: dict[str, list[Any]] = {name: [] for name in tables.CORPUS.names}
        self.prefix_chars: list[int] = []
        self.paths: list[Path] = []
        self.splits: list[Path] = []

    def add(
        self,
        text_id: str,
        text: str,
        domain: str | None,
        source: str,
        prefix_chars: int | None = None,
    ) -> None:
        for name, value in zip(tables.CORPUS.names, (text_id, text, domain, source), strict=True):
            self.rows[name].append(value)
        if prefix_chars is not None:
            self.prefix_chars.append(prefix_chars)
        if len(self.rows["text_id"]) >= self.shard_rows:
            self.flush()

    def flush(self) -> None:
        if not self.rows["text_id"]:
            return
        path = self.layout.corpus_shard(len(self.paths))
        if self.prefix_chars:
            splits = {"text_id": self.rows["text_id"], "prefix_chars": self.prefix_chars}
            self.splits.append(
                write_table(
                    pa.table(splits),
                    self.layout.corpus_splits_shard(len(self.paths)),
                    tables.CORPUS_SPLITS,
                )
            )
        write_table(pa.table(self.rows), path, tables.CORPUS)
        self.paths.append(path)
        self.rows = {name: [] for name in tables.CORPUS.names}
        self.prefix_chars = []


def ingest(
    cfg: CorpusSection,
    corpus_path: Path,
    layout: RunLayout,
    split_columns: tuple[str, str] | None = None,
    checks: ClipChecks = _DEFAULT_CHECKS,
) -> IngestStats:
    """Read every corpus file, write corpus shards and the ingest quarantine.

    With `split_columns` (prefix, continuation) each text is read from those two
    columns, and where it splits is written beside each corpus shard. `checks` are the
    run's clip checks (`tts.checks`): a text no clip of which can pass them is refused
    here, before TTS is spent on it.
    """
    fmt_files = [(detect_format(p, cfg.format), p) for p in input_files(corpus_path, cfg.format)]
    stats = IngestStats()
    writer = _ShardWriter(layout, cfg.shard_rows)
    rejected: list[dict[str, Any]] = []
    first_seen: dict[str, str] = {}
    removed: Counter[str] = Counter()
    for fmt, path in fmt_files:
        if split_columns is None:
            rows = READERS[fmt](path, cfg)
        else:
            from saladpipe.pipeline.split_columns import split_rows  # imports this module

            rows = split_rows(READERS[fmt], fmt, path, cfg, split_columns)
        for row in rows:
            stats.read += 1
            usable = usable_text(row, cfg.max_chars, checks)
            if isinstance(usable, Usable) and row.text_id in first_seen:
                usable = Rejected("duplicate_id", f"first seen at {first_seen[row.text_id]}")
            if isinstance(usable, Rejected):
                stats.quarantined[usable.reason] = stats.quarantined.get(usable.reason, 0) + 1
                rejected.append(
                    {
                        "text_id": row.text_id,
                        "source": row.source,
                        "reason": usable.reason,
                        "detail": usable.detail,
                        "text": row.text,
                    }
                )
                continue
            first_seen[row.text_id] = row.source
            if usable.removed:
                stats.texts_cleaned += 1
                removed += usable.removed
            writer.add(row.text_id, usable.text, row.domain, row.source, usable.prefix_chars)
            stats.kept += 1
    writer.flush()
    stats.shards = writer.paths
    stats.splits = writer.splits
    stats.cleaned = dict(removed)
    if removed:
        logger.info(
            "ingest: cleaned %d kept texts, removed %s", stats.texts_cleaned, _kinds(removed)
        )
    if rejected:
        stats.quarantine_path = layout.quarantine("ingest")
        write_table(quarantine_table("ingest", rejected), stats.quarantine_path, tables.QUARANTINE)
    if not stats.shards:
        raise ConfigError(
            f"corpus {corpus_path}: no usable text ({stats.read} rows read, all quarantined)"
        )
    return stats


def corpus_texts(corpus_shards: list[Path]) -> list[str]:
    """Every text of the corpus shards, in order."""
    return [
        text
        for path in corpus_shards
        for text in tables.strings(read_table(path, tables.CORPUS, columns=["text"]).column("text"))
    ]


def split_columns_of(probe: ProbeSection) -> tuple[str, str] | None:
    """The (prefix, continuation) columns ingest must read, when the split rule is columns."""
    return (probe.prefix_column, probe.continuation_column) if probe.split == "columns" else None


def corpus_location(corpus: CorpusSection, seed: int, cache_root: Path) -> Path:
    """The corpus file or folder; a builtin corpus is built into the cache on first use."""
    if corpus.builtin is not None:
        from saladpipe.corpora import builtin_corpus_path

        return builtin_corpus_path(
            corpus.builtin, corpus.builtin_texts_per_domain, seed, cache_root
        )
    assert corpus.path is not None  # the config validator guarantees one source
    return corpus.path


def ingest_corpus(
    corpus: CorpusSection,
    probe: ProbeSection,
    checks: ClipChecks,
    corpus_path: Path,
    sources: list[Path],
    layout: RunLayout,
) -> IngestStats:
    """The ingest stage; `sources` are the files `corpus_path` holds (`input_files`), by
    whose content a resumed run keys it."""
    stats = ingest(corpus, corpus_path, layout, split_columns_of(probe), checks)
    logger.info(
        "ingest: %d rows read, %d kept (%d of them cleaned), quarantined %s",
        stats.read,
        stats.kept,
        stats.texts_cleaned,
        stats.quarantined or "none",
    )
    return stats


INGEST = Stage("ingest", ingest_corpus, reads=("corpus_path", "sources"))
