"""A corpus that gives each text as two columns: the spoken prefix and the continuation.

With `probe.split = "columns"` ingest reads the two named columns (Parquet or
JSONL) instead of `corpus.text_field`. A text is their join with one space, and
where its continuation starts is kept beside its corpus shard, so that probing
splits it exactly there. A missing or empty part is an empty string: scoring then
reports such a probe in its row (`empty_continuation`; `no_audio` for an empty
prefix, which TTS quarantines).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.config import CorpusSection
from saladpipe.data_schemas.errors import ConfigError
from saladpipe.data_schemas.io import read_table
from saladpipe.pipeline.ingest import RawRow

# Reader problems that mean "this row has no such value" rather than "unreadable row".
_ABSENT = {"missing_text_field", "text_not_string"}


def _part(row: RawRow) -> str | None:
    """The row's value, stripped; '' when absent or null; None when the row is unreadable."""
    if row.problem in _ABSENT:
        return ""
    if row.problem is not None or not isinstance(row.text, str):
        return None
    return row.text.strip()


def _check_columns(fmt: str, path: Path, columns: tuple[str, str]) -> None:
    if fmt == "text":
        raise ConfigError(
            f"config error: probe.split: 'columns' needs a Parquet or JSONL corpus, not {path}"
        )
    if fmt == "parquet":
        names = pq.ParquetFile(path).schema_arrow.names
        for key, column in zip(("prefix_column", "continuation_column"), columns, strict=True):
            if column not in names:
                raise ConfigError(
                    f"config error: probe.{key}: column {column!r} not in {path} "
                    f"(columns: {', '.join(names)})"
                )


def split_rows(
    reader: Callable[[Path, CorpusSection], Iterator[RawRow]],
    fmt: str,
    path: Path,
    cfg: CorpusSection,
    columns: tuple[str, str],
) -> Iterator[RawRow]:
    """Rows whose text is `prefix + " " + continuation`, each with its `prefix_chars`.

    The reader runs once per column; both passes yield the same rows in the same
    order, so they are zipped. An unreadable row passes through with its problem.
    """
    _check_columns(fmt, path, columns)
    prefixes = reader(path, cfg.model_copy(update={"text_field": columns[0]}))
    continuations = reader(path, cfg.model_copy(update={"text_field": columns[1]}))
    for prefix_row, continuation_row in zip(prefixes, continuations, strict=True):
        prefix, continuation = _part(prefix_row), _part(continuation_row)
        if prefix is None:
            yield prefix_row
        elif continuation is None:
            yield continuation_row
        else:
            text = f"{prefix} {continuation}".strip()
            yield replace(prefix_row, text=text, problem=None, detail="", prefix_chars=len(prefix))


def read_splits(split_shards: list[Path]) -> pa.Table:
    """text_id and prefix_chars of every text ingested with split columns."""
    return pa.concat_tables([read_table(p, tables.CORPUS_SPLITS) for p in split_shards])
