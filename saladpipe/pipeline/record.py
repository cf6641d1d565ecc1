"""Record the round in the ledger: what it picked, what became of each text, and why.

The record is the round's memory for later rounds (never pick a text twice, reuse the
pool, learn the speech rate) and for `saladpipe explain`; it is written last, so its
presence means the round finished.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from saladpipe.data_schemas.config import RunConfig
from saladpipe.data_schemas.layout import RunLayout
from saladpipe.pipeline.ledger import (
    RoundInputs,
    RoundRecord,
    failed_texts,
    ledger_rows,
    write_round,
)
from saladpipe.pipeline.score import scoring_model_ids
from saladpipe.pipeline.select import SelectOutcome, read_selection
from saladpipe.pipeline.stage import Stage


def record_round(
    config: RunConfig,
    layout: RunLayout,
    pool: RoundInputs,
    outcome: SelectOutcome,
    selection_path: Path,
    shards: list[Path],
    tts_quarantine: list[Path],
    scores: list[Path],
    texts_path: Path,
    record_path: Path,
) -> RoundRecord:
    """The record stage: the round's ledger table (`texts_path`) and record (`record_path`).
    It keeps the whole config: a later round checks its own against it."""
    selection = read_selection(selection_path)
    failed = failed_texts(tts_quarantine)
    rows = ledger_rows(layout, selection, shards, failed)
    models = scoring_model_ids(scores)
    record = RoundRecord(
        round=layout.round_index,
        config_hash=config.config_hash(),
        config=config.model_dump(mode="json"),
        strategy=config.select.strategy,
        budget_unit=outcome.unit,
        budget_limit=outcome.limit,
        budget_spent=outcome.spent,
        teacher_id=models.get("teacher"),
        student_id=models.get("student"),
        selected=outcome.selected,
        synthesized=len(selection) - len(failed),
        tts_failed=len(failed),
        shards=[str(p.relative_to(layout.root)) for p in shards],
        inputs=pool,
        gap_source=outcome.gap_source,
        speech_rate=asdict(outcome.speech_rate),
        notes=outcome.notes,
    )
    return write_round(record, rows, texts_path, record_path)


RECORD = Stage(
    "record-round",
    record_round,
    reads=("outcome", "selection_path", "shards", "tts_quarantine", "scores"),
    keeps=("texts_path", "record_path"),
)
