"""The ledger: what every round of a run folder selected and synthesized.

It lives in the run's state folder: per round, one Parquet table of the selected
texts and what became of them (LEDGER), and one JSON record written last, whose
presence means the round finished. A next round reads it to never pick a text
again, to learn the speech rate from clips already made, and to reuse the corpus,
embeddings, clusters and probes that round 0 made.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.config import WHERE_NOT_WHAT, RunConfig
from saladpipe.data_schemas.errors import ConfigError, SaladpipeError
from saladpipe.data_schemas.io import read_table, write_table, write_text
from saladpipe.data_schemas.layout import RunLayout
from saladpipe.progress import logger

# Config sections that define the pool and its probes: a next round must not change them,
# except for keys that only say how the work was split or run.
POOL_SECTIONS = ("corpus", "embed", "cluster", "probe")
_FREE_KEYS = {("corpus", "shard_rows"), ("embed", "batch_size"), ("embed", "device")}

STATUS_SYNTHESIZED = "synthesized"
STATUS_TTS_FAILED = "tts_failed"


@dataclass(frozen=True)
class RoundInputs:
    """Files round 0 made once for every round, relative to the run folder, and its counts."""

    corpus: list[str]
    embeddings: list[str]
    assignments: list[str]
    probes: list[str]
    clips: list[str]
    counts: dict[str, int] = field(default_factory=dict)
    # Where the probe clips' rejections go (a file only where a clip was rejected); a
    # record older than this field has none.
    probe_quarantine: list[str] = field(default_factory=list)

    @classmethod
    def of(
        cls,
        root: Path,
        corpus: list[Path],
        embeddings: list[Path],
        assignments: list[Path],
        probes: list[Path],
        clips: list[Path],
        counts: dict[str, int],
        probe_quarantine: list[Path],
    ) -> RoundInputs:
        def rel(paths: list[Path]) -> list[str]:
            return [str(p.relative_to(root)) for p in paths]

        return cls(
            rel(corpus),
            rel(embeddings),
            rel(assignments),
            rel(probes),
            rel(clips),
            counts,
            rel(probe_quarantine),
        )

    def paths(self, root: Path, kind: str) -> list[Path]:
        return [root / p for p in getattr(self, kind)]


@dataclass(frozen=True)
class RoundRecord:
    """One finished round: its config, models, budget, what it picked and made, and why."""

    round: int
    config_hash: str
    config: dict[str, Any]
    strategy: str
    budget_unit: str
    budget_limit: float
    budget_spent: float
    teacher_id: str | None
    student_id: str | None
    selected: int
    synthesized: int
    tts_failed: int
    shards: list[str]
    inputs: RoundInputs
    gap_source: str
    speech_rate: dict[str, float]
    notes: list[str]
    finished_at: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def read(cls, path: Path) -> RoundRecord:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            raw["inputs"] = RoundInputs(**raw["inputs"])
            return cls(**raw)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise SaladpipeError(f"{path}: not a readable round record: {exc}") from None


def finished_rounds(layout: RunLayout) -> list[RoundRecord]:
    """Records of rounds 0, 1, ... up to the first one that did not finish."""
    records: list[RoundRecord] = []
    while layout.ledger_round(len(records)).is_file():
        records.append(RoundRecord.read(layout.ledger_round(len(records))))
    return records


def ledger_files(layout: RunLayout, before: int | None = None) -> list[Path]:
    """The ledger tables of the finished rounds (those before `before`, if given)."""
    rounds = finished_rounds(layout)
    if before is not None:
        rounds = rounds[:before]
    return [layout.ledger_texts(r.round) for r in rounds]


def ledger_table(paths: list[Path]) -> pa.Table:
    """Every text the given ledger tables hold, in order."""
    if not paths:
        return tables.LEDGER.empty_table()
    return pa.concat_tables([read_table(p, tables.LEDGER) for p in paths])


def read_ledger(layout: RunLayout, before: int | None = None) -> pa.Table:
    """Every text the finished rounds (those before `before`, if given) selected."""
    return ledger_table(ledger_files(layout, before))


def same_attempt(layout: RunLayout, config: RunConfig) -> bool:
    """True when the folder's last attempt ran this very config (so it can be resumed)."""
    try:
        last = json.loads(layout.config_copy.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return False
    current = config.model_dump(mode="json")
    return all(last.get(k) == v for k, v in current.items() if k not in WHERE_NOT_WHAT)


def check_next_round(layout: RunLayout, config: RunConfig) -> int:
    """The index of the next round; a config that changes the pool is a config error."""
    rounds = finished_rounds(layout)
    if not rounds:
        raise ConfigError(
            f"run folder {layout.root} has no finished round (no {layout.ledger_round(0)}); "
            "run without --next-round first"
        )
    first = rounds[0].config
    current = config.model_dump(mode="json")
    if first["run"]["seed"] != current["run"]["seed"]:
        raise ConfigError(
            f"config error: run.seed: {current['run']['seed']} differs from round 0's "
            f"{first['run']['seed']}; a next round reuses the pool that seed drew"
        )
    for section in POOL_SECTIONS:
        for key, value in current[section].items():
            if (section, key) not in _FREE_KEYS and first[section].get(key) != value:
                raise ConfigError(
                    f"config error: {section}.{key}: {value!r} differs from round 0's "
                    f"{first[section].get(key)!r}; a next round reuses the run folder's corpus, "
                    "embeddings, clusters and probes"
                )
    return len(rounds)


def clear_unfinished_round(layout: RunLayout) -> list[Path]:
    """Remove what an interrupted attempt at this round (>= 1) left; returns the paths."""
    if layout.round_index == 0:
        raise SaladpipeError("round 0 is cleared with --overwrite, not here")
    tag = f"-r{layout.round_index:03d}"
    stale = [layout.selection(layout.round_index), layout.ledger_texts(layout.round_index)]
    for folder in ("shards", "quarantine", "scores", "clusters"):
        directory = layout.root / folder
        if directory.is_dir():
            stale.extend(p for p in directory.iterdir() if tag in p.name)
    removed = [p for p in stale if p.is_file()]
    for path in removed:
        path.unlink()
    return removed


def reused_pool(layout: RunLayout, resuming: bool) -> RoundInputs:
    """A later round's pool: round 0's, as the ledger recorded it. An attempt at this round
    with another config is cleared first; the same config resumes from its records."""
    stale = [] if resuming else clear_unfinished_round(layout)
    if stale:
        logger.info("round %d: removed %d stale files", layout.round_index, len(stale))
    logger.info("round %d: reusing the pool and probes of round 0", layout.round_index)
    return finished_rounds(layout)[0].inputs


def failed_texts(tts_quarantine: list[Path]) -> set[str]:
    """Ids of the selected texts whose synthesis failed (the files that exist)."""
    # text_id may be null in a quarantine table, but not in TTS's: each `Rejected` names its text.
    return {
        text_id
        for path in tts_quarantine
        if path.is_file()
        for text_id in tables.strings(
            read_table(path, tables.QUARANTINE, columns=["text_id"]).column("text_id")
        )
    }


def ledger_rows(
    layout: RunLayout, selection: pa.Table, shards: list[Path], failed: set[str]
) -> pa.Table:
    """What became of each selected text: in which shard, how long, or that TTS failed."""
    shard_of: dict[str, tuple[str, float]] = {}
    for path in shards:
        table = pq.read_table(path, columns=["text_id", "duration_s"])
        name = str(path.relative_to(layout.root))
        for text_id, seconds in zip(
            tables.strings(table.column("text_id")),
            tables.floats(table.column("duration_s")),
            strict=True,
        ):
            shard_of[text_id] = (name, float(seconds))
    ids = selection.column("text_id").to_pylist()
    unaccounted = [t for t in ids if t not in shard_of and t not in failed]
    if unaccounted:
        raise SaladpipeError(
            f"{len(unaccounted)} selected texts are in no shard and no TTS quarantine "
            f"(first: {unaccounted[0]!r})"
        )
    return pa.table(
        {
            "text_id": selection.column("text_id"),
            "selection_round": selection.column("selection_round"),
            "cluster": selection.column("cluster"),
            "status": [STATUS_SYNTHESIZED if t in shard_of else STATUS_TTS_FAILED for t in ids],
            "shard": [shard_of[t][0] if t in shard_of else None for t in ids],
            "duration_s": [shard_of[t][1] if t in shard_of else None for t in ids],
            "n_chars": pc.utf8_length(selection.column("text")),
        }
    )


def write_round(
    record: RoundRecord, rows: pa.Table, texts_path: Path, record_path: Path
) -> RoundRecord:
    """Write the round's ledger table, then its record (last: it marks the round finished)."""
    write_table(rows, texts_path, tables.LEDGER)
    finished = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    record = RoundRecord(**{**asdict(record), "inputs": record.inputs, "finished_at": finished})
    write_text(record.to_json(), record_path)
    return record
