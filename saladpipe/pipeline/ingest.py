"""Ingest: read a text corpus (Parquet, JSONL or plain text) into validated corpus shards.

Rows that cannot be used go to the ingest quarantine with their reason: empty,
whitespace only, invalid UTF-8, too long, not valid JSON, missing or non-text field,
duplicate id. Nothing is dropped silently.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.config import CorpusSection
from saladpipe.data_schemas.errors import ConfigError
from saladpipe.data_schemas.io import read_table, write_table
from saladpipe.data_schemas.layout import RunLayout
from saladpipe.pipeline.quarantine import quarantine_table

_SUFFIXES = {"parquet": (".parquet",), "jsonl": (".jsonl", ".json"), "text": (".txt", ".text")}


@dataclass(frozen=True)
class RawRow:
    """One row as read from a source, before validation; `text` is bytes when undecoded."""

    text: str | bytes | None
    text_id: str
    domain: str | None
    source: str
    problem: str | None = None
    # Where the continuation starts, for a corpus read with split columns.
    prefix_chars: int | None = None


@dataclass
class IngestStats:
    """What ingest read, kept and quarantined; reasons counted by name."""

    read: int = 0
    kept: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    shards: list[Path] = field(default_factory=list)
    quarantine_path: Path | None = None


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


def _as_text(value: Any) -> str | bytes | None:
    return value if value is None or isinstance(value, str | bytes) else repr(value)


def read_parquet(path: Path, cfg: CorpusSection) -> Iterator[RawRow]:
    """Rows of a Parquet file, read in batches; the text column may be string or binary."""
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
            text_id = data[id_field][i] if id_field else None
            label = data[label_field][i] if label_field else None
            yield RawRow(
                text=_as_text(text),
                text_id=str(text_id) if text_id is not None else f"{path.stem}:{row}",
                domain=None if label is None else str(label),
                source=f"{path.name}:{row}",
            )
            row += 1


def read_jsonl(path: Path, cfg: CorpusSection) -> Iterator[RawRow]:
    """Rows of a JSON-lines file; undecodable or unparsable lines become problem rows."""
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            source = f"{path.name}:{lineno}"
            fallback_id = f"{path.stem}:{lineno}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                yield RawRow(raw, fallback_id, None, source, "invalid_utf8")
                continue
            if not line.strip():
                yield RawRow(line, fallback_id, None, source, "empty")
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                yield RawRow(line, fallback_id, None, source, "invalid_json")
                continue
            if not isinstance(record, dict) or cfg.text_field not in record:
                yield RawRow(line, fallback_id, None, source, "missing_text_field")
                continue
            text = record[cfg.text_field]
            text_id = record.get(cfg.id_field) if cfg.id_field else None
            label = record.get(cfg.label_field) if cfg.label_field else None
            yield RawRow(
                text=text if isinstance(text, str) else line,
                text_id=str(text_id) if text_id is not None else fallback_id,
                domain=None if label is None else str(label),
                source=source,
                problem=None if isinstance(text, str) else "text_not_string",
            )


def read_text(path: Path, cfg: CorpusSection) -> Iterator[RawRow]:
    """One text a line; the id is file stem and line number."""
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            yield RawRow(
                text=raw.rstrip(b"\r\n"),
                text_id=f"{path.stem}:{lineno}",
                domain=None,
                source=f"{path.name}:{lineno}",
            )


READERS = {"parquet": read_parquet, "jsonl": read_jsonl, "text": read_text}


def _decoded(row: RawRow) -> str | None:
    """The row's text as a string, or None when it is missing or not UTF-8."""
    if isinstance(row.text, bytes):
        try:
            return row.text.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return row.text


@dataclass(frozen=True)
class Rejected:
    """Why a row cannot be used."""

    reason: str


def usable_text(row: RawRow, max_chars: int) -> str | Rejected:
    """The row's clean text (decoded, stripped), or why it cannot be used."""
    if row.problem:
        return Rejected(row.problem)
    text = _decoded(row)
    if text is None and isinstance(row.text, bytes):
        return Rejected("invalid_utf8")
    if not text:
        return Rejected("empty")
    stripped = text.strip()
    if not stripped:
        return Rejected("whitespace_only")
    if len(stripped) > max_chars:
        return Rejected("too_long")
    return stripped


class _ShardWriter:
    """Buffers validated rows and writes a corpus shard every `shard_rows` rows."""

    def __init__(self, layout: RunLayout, shard_rows: int) -> None:
        self.layout = layout
        self.shard_rows = shard_rows
        self.rows: dict[str, list[Any]] = {name: [] for name in tables.CORPUS.names}
        self.prefix_chars: list[int] = []
        self.paths: list[Path] = []

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
            write_table(
                pa.table(splits),
                self.layout.corpus_splits_shard(len(self.paths)),
                tables.CORPUS_SPLITS,
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
) -> IngestStats:
    """Read every corpus file, write corpus shards and the ingest quarantine.

    With `split_columns` (prefix, continuation) each text is read from those two
    columns, and where it splits is written beside each corpus shard.
    """
    fmt_files = [(detect_format(p, cfg.format), p) for p in input_files(corpus_path, cfg.format)]
    stats = IngestStats()
    writer = _ShardWriter(layout, cfg.shard_rows)
    rejected: list[dict[str, Any]] = []
    seen: set[str] = set()
    for fmt, path in fmt_files:
        if split_columns is None:
            rows = READERS[fmt](path, cfg)
        else:
            from saladpipe.pipeline.split_columns import split_rows  # imports this module

            rows = split_rows(READERS[fmt], fmt, path, cfg, split_columns)
        for row in rows:
            stats.read += 1
            text = usable_text(row, cfg.max_chars)
            if not isinstance(text, Rejected) and row.text_id in seen:
                text = Rejected("duplicate_id")
            if isinstance(text, Rejected):
                reason = text.reason
                stats.quarantined[reason] = stats.quarantined.get(reason, 0) + 1
                rejected.append(
                    {
                        "text_id": row.text_id,
                        "source": row.source,
                        "reason": reason,
                        "detail": _detail(reason, row, cfg.max_chars),
                        "text": row.text,
                    }
                )
                continue
            seen.add(row.text_id)
            writer.add(row.text_id, text, row.domain, row.source, row.prefix_chars)
            stats.kept += 1
    writer.flush()
    stats.shards = writer.paths
    if rejected:
        stats.quarantine_path = layout.quarantine("ingest")
        write_table(quarantine_table("ingest", rejected), stats.quarantine_path, tables.QUARANTINE)
    if not stats.shards:
        raise ConfigError(
            f"corpus {corpus_path}: no usable text ({stats.read} rows read, all quarantined)"
        )
    return stats


def _detail(reason: str, row: RawRow, max_chars: int) -> str | None:
    if reason == "too_long" and isinstance(row.text, str | bytes):
        return f"{len(row.text.strip())} chars, limit {max_chars}"
    return None


def corpus_texts(corpus_shards: list[Path]) -> list[str]:
    """Every text of the corpus shards, in order."""
    return [
        text
        for path in corpus_shards
        for text in read_table(path, tables.CORPUS, columns=["text"]).column("text").to_pylist()
    ]
