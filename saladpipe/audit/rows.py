"""The audit table: every selected text of every round, with what became of it.

One row per selection row, joined by (text_id, selection_round) with its shard row
(every column the shard has but audio, plus where the clip lives) or its TTS
quarantine record. `status` says which: `synthesized`, `quarantined`, or `missing`
(in no shard and no quarantine, as in a run that stopped before synthesis ended).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from saladpipe.audit.run import RunFolder, concat, read_columns
from saladpipe.data_schemas import tables
from saladpipe.data_schemas.errors import ConfigError
from saladpipe.data_schemas.io import atomic_path

STATUS_SYNTHESIZED = "synthesized"
STATUS_QUARANTINED = "quarantined"
STATUS_MISSING = "missing"

KEYS = ["text_id", "selection_round"]
# Columns the audit relies on; null where a row has no clip or no quarantine record.
_OUTCOME_COLUMNS: dict[str, pa.DataType] = {
    "shard": pa.string(),
    "shard_row": pa.int64(),
    "duration_s": pa.float32(),
    "tts_engine": pa.string(),
    "tts_voice": pa.string(),
    "quarantine_reason": pa.string(),
    "quarantine_detail": pa.string(),
}
# The clip's ASR character error rate, under the first of these names a shard has.
CER_COLUMNS = ("asr_cer", "cer")


@dataclass(frozen=True)
class AuditTable:
    """The joined rows, in (round, rank) order, and what the join noticed."""

    table: pa.Table
    notes: list[str] = field(default_factory=list)

    @property
    def cer_column(self) -> str | None:
        """Name of the ASR error column, when the shards measured one."""
        present = [c for c in CER_COLUMNS if c in self.table.column_names]
        return next((c for c in present if self.table.column(c).null_count < len(self.table)), None)


def selection_rows(run: RunFolder) -> pa.Table:
    """Every round's selection, stacked."""
    parts = [read_columns(run.selection_path(r)) for r in run.rounds]
    table = concat(parts)
    assert table is not None  # RunFolder.open refuses a run without a selection
    return table.set_column(
        table.column_names.index("selection_round"),
        "selection_round",
        table.column("selection_round").cast(pa.int32()),
    )


def _shard_rows(run: RunFolder, skip: set[str]) -> pa.Table | None:
    """Every shard column but the audio and those the selection already has."""
    parts = []
    for path in run.shards():
        names = pq.read_schema(path).names
        table = read_columns(path, [n for n in names if n != "audio" and n not in skip])
        table = table.append_column(
            "shard", pa.repeat(pa.scalar(str(path.relative_to(run.root))), table.num_rows)
        )
        parts.append(table.append_column("shard_row", pa.array(np.arange(table.num_rows))))
    return concat(parts)


def _tts_failures(run: RunFolder) -> pa.Table | None:
    parts = []
    for tagged in run.quarantine():
        if tagged.stem != "tts":
            continue
        table = read_columns(tagged.path, ["text_id", "reason", "detail"])
        parts.append(
            pa.table(
                {
                    "text_id": table.column("text_id"),
                    "selection_round": pa.array(np.full(table.num_rows, tagged.round, np.int32)),
                    "quarantine_reason": table.column("reason"),
                    "quarantine_detail": table.column("detail"),
                }
            )
        )
    return concat(parts)


def _outcomes(run: RunFolder, skip: set[str]) -> pa.Table | None:
    """What became of each pick: its shard row, or its TTS quarantine record."""
    table = concat([t for t in (_shard_rows(run, skip), _tts_failures(run)) if t is not None])
    if table is None:
        return None
    return table.set_column(
        table.column_names.index("selection_round"),
        "selection_round",
        table.column("selection_round").cast(pa.int32()),
    )


def _keys(table: pa.Table) -> pa.Array:
    """(text_id, round) as one string, for a hash lookup that keeps the selection's order."""
    rounds = pc.cast(table.column("selection_round"), pa.string())
    # pyarrow-stubs want every argument of the same kind (all arrays or all scalars); pyarrow
    # takes arrays with a scalar separator.
    keys = pc.binary_join_element_wise(table.column("text_id"), rounds, "\x1f")  # type: ignore[call-overload]
    return keys.combine_chunks()


def audit_table(run: RunFolder) -> AuditTable:
    """Selection rows of every round with their clip or their quarantine reason."""
    table = selection_rows(run)
    outcomes = _outcomes(run, set(table.column_names) - set(KEYS))
    notes = []
    if outcomes is not None and outcomes.num_rows:
        keys = _keys(outcomes)
        position = pc.index_in(_keys(table), value_set=keys)
        found = outcomes.drop_columns(KEYS).take(position)
        for name in found.column_names:
            table = table.append_column(name, found.column(name))
        matched = len(pc.unique(position.drop_null()))
        if outcomes.num_rows > matched:
            repeated = outcomes.num_rows - len(pc.unique(keys))
            unmatched = outcomes.num_rows - repeated - matched
            if unmatched:
                notes.append(f"{unmatched} shard or TTS-quarantine rows match no selection row")
            if repeated:
                notes.append(
                    f"{repeated} shard or TTS-quarantine rows repeat the (text_id, round) of "
                    "an earlier one; the first is shown"
                )
    for name, kind in _OUTCOME_COLUMNS.items():
        if name not in table.column_names:
            # pyarrow-stubs overload pa.nulls for each concrete type, with none for DataType.
            table = table.append_column(name, pa.nulls(table.num_rows, kind))  # type: ignore[call-overload]
    status = pc.if_else(
        pc.is_valid(table.column("shard")),
        STATUS_SYNTHESIZED,
        pc.if_else(
            pc.is_valid(table.column("quarantine_reason")), STATUS_QUARANTINED, STATUS_MISSING
        ),
    )
    table = table.append_column("status", status)
    table = table.sort_by([("selection_round", "ascending"), ("rank", "ascending")])
    missing = table.filter(pc.equal(table.column("status"), pa.scalar(STATUS_MISSING))).num_rows
    if missing:
        notes.append(
            f"{missing} selected texts are in no shard and no TTS quarantine "
            "(their synthesis did not finish)"
        )
    return AuditTable(table.combine_chunks(), notes)


@dataclass(frozen=True)
class AuditFilter:
    """Which rows an audit shows; empty tuples and None mean no restriction."""

    clusters: tuple[int, ...] = ()
    rounds: tuple[int, ...] = ()
    voices: tuple[str, ...] = ()
    gap_min: float | None = None
    gap_max: float | None = None
    quarantined: bool | None = None

    def __post_init__(self) -> None:
        for name in ("gap_min", "gap_max"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ConfigError(f"--{name.replace('_', '-')}: must be a finite number")
        if self.gap_min is not None and self.gap_max is not None and self.gap_min > self.gap_max:
            raise ConfigError(f"--gap-min {self.gap_min} is above --gap-max {self.gap_max}")

    def check(self, table: pa.Table, rounds: Sequence[int], k: int | None) -> None:
        """Refuse a filter naming a round, cluster or voice the run does not have."""
        unknown_rounds = sorted(set(self.rounds) - set(rounds))
        if unknown_rounds:
            raise ConfigError(f"--round {unknown_rounds[0]}: the run has rounds {list(rounds)}")
        if k is not None:
            bad = sorted(c for c in self.clusters if not 0 <= c < k)
            if bad:
                raise ConfigError(f"--cluster {bad[0]}: the run has clusters 0 to {k - 1}")
        voices = {v for v in table.column("tts_voice").to_pylist() if v is not None}
        unknown_voices = sorted(set(self.voices) - voices)
        if unknown_voices:
            have = ", ".join(sorted(voices)) or "none (no clip was made)"
            raise ConfigError(f"--voice {unknown_voices[0]!r}: the run's voices are {have}")

    def apply(self, table: pa.Table) -> pa.Table:
        mask = pa.repeat(True, table.num_rows)
        if self.clusters:
            mask = pc.and_(mask, pc.is_in(table.column("cluster"), pa.array(self.clusters)))
        if self.rounds:
            rounds = pa.array(self.rounds, pa.int32())
            mask = pc.and_(mask, pc.is_in(table.column("selection_round"), rounds))
        if self.voices:
            voices = pa.array(self.voices, pa.string())
            in_voices = pc.is_in(table.column("tts_voice"), voices).fill_null(False)
            # fill_null keeps a boolean array's type; pyarrow-stubs lose it.
            mask = pc.and_(mask, cast(pa.BooleanArray, in_voices))
        if self.gap_min is not None:
            mask = pc.and_(
                mask, pc.greater_equal(table.column("gap_score"), pa.scalar(self.gap_min))
            )
        if self.gap_max is not None:
            mask = pc.and_(mask, pc.less_equal(table.column("gap_score"), pa.scalar(self.gap_max)))
        if self.quarantined is not None:
            is_quarantined = pc.equal(table.column("status"), pa.scalar(STATUS_QUARANTINED))
            mask = pc.and_(mask, is_quarantined if self.quarantined else pc.invert(is_quarantined))
        return table.filter(mask)


def write_csv(table: pa.Table, path: Path) -> Path:
    """The rows as CSV (UTF-8, header, quoted where needed), written atomically."""
    with atomic_path(path) as tmp:
        pa_csv.write_csv(table, tmp)
    return path


# (header, column, width) of the terminal table; the text takes what is left.
_PRINTED = (
    ("text_id", "text_id", 22),
    ("round", "selection_round", 5),
    ("rank", "rank", 7),
    ("cluster", "cluster", 7),
    ("gap", "gap_score", 10),
    ("voice", "tts_voice", 18),
    ("status", "status", 11),
    ("secs", "duration_s", 6),
)


def _cell(value: object, width: int) -> str:
    if value is None:
        text = "-"
    elif isinstance(value, float):
        text = f"{value:.4g}"
    else:
        text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def format_rows(table: pa.Table, width: int = 160) -> list[str]:
    """A fixed-width table of the rows, one line each, with a header."""
    text_width = max(20, width - sum(w + 1 for _, _, w in _PRINTED))
    columns = [(h, c, w) for h, c, w in _PRINTED if c in table.column_names]
    lines = [" ".join(h.ljust(w) for h, _, w in columns) + " text"]
    values = [table.column(c).to_pylist() for _, c, _ in columns]
    texts = tables.strings(table.column("text")) if "text" in table.column_names else []
    for i in range(table.num_rows):
        cells = [_cell(v[i], w).ljust(w) for v, (_, _, w) in zip(values, columns, strict=True)]
        text = _cell(texts[i].replace("\n", " "), text_width) if texts else ""
        lines.append(" ".join(cells) + " " + text)
    return lines
