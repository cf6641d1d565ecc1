"""`saladpipe listen`: a seeded sample of clips as WAV files with a CSV of their texts.

For listening sessions: anyone can play a WAV, and the CSV says what each file should
say and where it came from. The CSV is written last, so a folder with one is complete.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from saladpipe.audit.clips import read_clips, to_wav
from saladpipe.audit.rows import STATUS_SYNTHESIZED, write_csv
from saladpipe.audit.sampling import sample_rows
from saladpipe.data_schemas import tables
from saladpipe.data_schemas.errors import ConfigError
from saladpipe.data_schemas.io import atomic_path

CSV_NAME = "texts.csv"
# Columns of the CSV after `file`, when the rows have them.
_CSV_COLUMNS = (
    "text_id",
    "text",
    "selection_round",
    "cluster",
    "gap_score",
    "cluster_gap",
    "tts_engine",
    "tts_voice",
    "duration_s",
    "asr_cer",
    "cer",
    "shard",
    "shard_row",
)


@dataclass(frozen=True)
class ListeningSet:
    """What was written: the folder, the CSV and how many clips were eligible."""

    out_dir: Path
    csv: Path
    clips: int
    eligible: int


def _file_name(position: int, text_id: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", text_id).strip("._") or "clip"
    return f"{position:04d}_{safe[:80]}.wav"


def write_listening_set(
    rows: pa.Table, root: Path, out_dir: Path, n: int, seed: int, overwrite: bool = False
) -> ListeningSet:
    """Write up to n synthesized rows of `rows` (an audit table) as WAV, with texts.csv."""
    if n < 1:
        raise ConfigError(f"-n: must be at least 1 (got {n})")
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise ConfigError(f"{out_dir} is not empty; choose another folder or pass --overwrite")
    made = np.flatnonzero(pc.equal(rows.column("status"), pa.scalar(STATUS_SYNTHESIZED)).to_numpy())
    if made.size == 0:
        raise ConfigError("no synthesized clip matches the filters; nothing to listen to")
    chosen = rows.take(pa.array(sample_rows(made, n, np.random.default_rng(seed))))
    # Synthesized rows (only those are chosen) have a shard and a row in it.
    refs = list(
        zip(
            tables.strings(chosen.column("shard")),
            tables.ints(chosen.column("shard_row")),
            strict=True,
        )
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    if overwrite:  # the CSV first: a folder without one is known to be incomplete
        (out_dir / CSV_NAME).unlink(missing_ok=True)
        for old in out_dir.glob("*.wav"):
            old.unlink()
    names = []
    for position, (text_id, clip) in enumerate(
        zip(tables.strings(chosen.column("text_id")), read_clips(root, refs), strict=True)
    ):
        names.append(_file_name(position, text_id))
        with atomic_path(out_dir / names[-1]) as tmp:
            tmp.write_bytes(to_wav(clip))
    columns = [c for c in _CSV_COLUMNS if c in chosen.column_names]
    table = chosen.select(columns)
    table = table.add_column(0, "file", pa.array(names, pa.string()))
    csv = write_csv(table, out_dir / CSV_NAME)
    return ListeningSet(out_dir, csv, len(names), int(made.size))
