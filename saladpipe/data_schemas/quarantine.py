"""Quarantine: rows a stage could not use, kept with the reason instead of dropped."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from saladpipe.data_schemas import tables

_TEXT_CHARS = 200


def quarantine_table(stage: str, records: list[dict[str, Any]]) -> pa.Table:
    """Build a quarantine table; the text is cut to a readable length, and what cannot be
    written as UTF-8 (undecodable bytes, a lone surrogate) is shown replaced."""
    for record in records:
        text = record.get("text")
        if isinstance(text, str):
            text = text.encode("utf-8", errors="replace")
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        record["text"] = None if text is None else text[:_TEXT_CHARS]
        record["stage"] = stage
    return pa.Table.from_pylist(records, schema=tables.QUARANTINE)
