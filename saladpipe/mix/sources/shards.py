"""saladpipe shards: synthetic speech from one or several run folders, as one source.

Within a run folder the ledger keeps every text to one round, and only the rows its
finished rounds account for are offered (others, say a stray file in shards/, are
counted as `not_in_ledger`). Across the folders of one source a text (same id or
same words) is taken from the first folder that holds it; later copies are counted
as `repeated_text`.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.errors import ConfigError
from saladpipe.data_schemas.layout import RunLayout
from saladpipe.mix.sources.base import Candidates, SourceReader, empty_rows, split_locator
from saladpipe.mix.sources.parquet_rows import row_value
from saladpipe.pipeline.ledger import STATUS_SYNTHESIZED, finished_rounds, read_ledger
from saladpipe.shards.dataset import shard_paths
from saladpipe.tts.audio import decode

_COLUMNS = ["text_id", "text", "duration_s", "domain", "cluster", "tts_voice", "tts_engine"]
REPEATED_TEXT = "repeated_text"
NOT_IN_LEDGER = "not_in_ledger"


def text_key(text: str) -> str:
    """Two texts that differ only in case and spacing are the same text."""
    return " ".join(text.casefold().split())


def synthesized_in_ledger(folder: Path) -> set[str] | None:
    """The texts a run folder's finished rounds synthesized; None for a plain shard folder."""
    layout = RunLayout(folder)
    if not finished_rounds(layout):
        return None
    ledger = read_ledger(layout)
    status = tables.strings(ledger.column("status"))
    ids = tables.strings(ledger.column("text_id"))
    return {i for i, s in zip(ids, status, strict=True) if s == STATUS_SYNTHESIZED}


class ShardsReader(SourceReader):
    kind = "shards"

    def scan(self) -> Candidates:
        rows, skipped = empty_rows(), Counter[str]()
        seen: set[str] = set()
        for folder in self.paths:
            ledger = synthesized_in_ledger(folder)
            files = shard_paths(folder)
            if not files:
                raise ConfigError(f"config error: source {self.source.name}: no shards in {folder}")
            for path in files:
                tables.check_version(pq.read_schema(path), str(path))
                table = pq.read_table(path, columns=_COLUMNS).to_pylist()
                for index, row in enumerate(table):
                    if ledger is not None and row["text_id"] not in ledger:
                        skipped[NOT_IN_LEDGER] += 1
                        continue
                    keys = {f"id:{row['text_id']}", f"text:{text_key(row['text'])}"}
                    if keys & seen:
                        skipped[REPEATED_TEXT] += 1
                        continue
                    seen |= keys
                    rows["item_id"].append(row["text_id"])
                    rows["locator"].append(f"{path}#{index}")
                    rows["text"].append(row["text"])
                    rows["duration_s"].append(float(row["duration_s"]))
                    rows["group"].append(row["domain"] or f"cluster {row['cluster']}")
                    rows["voice"].append(row["tts_voice"])
                    rows["engine"].append(row["tts_engine"])
        return Candidates.from_rows(rows, skipped)

    def load(self, locator: str) -> tuple[np.ndarray, int]:
        path, row = split_locator(locator)
        return decode(row_value(Path(path), int(row), "audio")["bytes"])
