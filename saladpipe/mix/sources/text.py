"""Text-only sources: a corpus file or folder, or the texts a run did not select.

Text rows have no audio; in an hours mix they count as long as their speech would
last (`mix.seconds_per_char`). Rows are validated as the run's ingest validates them.
"""

from __future__ import annotations

from collections import Counter

import pyarrow.parquet as pq

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.config import CorpusSection
from saladpipe.data_schemas.errors import ConfigError
from saladpipe.data_schemas.layout import RunLayout
from saladpipe.mix.sources.base import Candidates, SourceReader, empty_rows
from saladpipe.pipeline.ingest import READERS, Rejected, detect_format, input_files, usable_text
from saladpipe.pipeline.ledger import finished_rounds, read_ledger


class TextReader(SourceReader):
    kind = "text"

    def scan(self) -> Candidates:
        rows, skipped = empty_rows(), Counter[str]()
        for root in self.paths:
            corpus = CorpusSection(path=root)
            for path in input_files(root, corpus.format):
                for row in READERS[detect_format(path, corpus.format)](path, corpus):
                    usable = usable_text(row, corpus.max_chars)
                    if isinstance(usable, Rejected):
                        skipped[usable.reason] += 1
                        continue
                    rows["item_id"].append(row.text_id)
                    rows["locator"].append(f"{path}#{row.source.rsplit(':', 1)[-1]}")
                    rows["text"].append(usable.text)
                    rows["group"].append(row.domain)
        return Candidates.from_rows(rows, skipped)


class UnselectedReader(SourceReader):
    """The pool of each run folder (its ingested corpus) less every text its rounds selected."""

    kind = "unselected"

    def scan(self) -> Candidates:
        rows = empty_rows()
        for root in self.paths:
            layout = RunLayout(root)
            corpus = sorted((root / "corpus").glob("part-*.parquet"))
            if not corpus or not finished_rounds(layout):
                raise ConfigError(
                    f"config error: source {self.source.name}: {root} is not a finished run "
                    "folder (no corpus shards or no finished round)"
                )
            selected = set(tables.strings(read_ledger(layout).column("text_id")))
            for path in corpus:
                for index, row in enumerate(pq.read_table(path).to_pylist()):
                    if row["text_id"] in selected:
                        continue
                    rows["item_id"].append(row["text_id"])
                    rows["locator"].append(f"{path}#{index}")
                    rows["text"].append(row["text"])
                    rows["group"].append(row["domain"])
        return Candidates.from_rows(rows)
