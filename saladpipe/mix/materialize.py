"""Materialise a mix: its rows with their audio in shards of its own, one folder to move.

A trainer on another cluster cannot follow locators into this machine's files; a
materialised mix carries the audio itself, in the run shards' Hugging Face Audio
format (FLAC bytes, `datasets` types the column as Audio), rows in rows.parquet's
order, so `MixDataset` and `datasets` read it without the sources.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.io import sha256_file
from saladpipe.data_schemas.mix_config import MixSource
from saladpipe.data_schemas.mix_manifest import MixShardEntry
from saladpipe.data_schemas.shard_writer import ShardWriter
from saladpipe.mix.sources import reader_for
from saladpipe.tts.audio import encode

SHARDS_DIR = "shards"
_BATCH_ROWS = 64


def materialize(out_dir: Path, rows: pa.Table, sources: Sequence[MixSource]) -> list[MixShardEntry]:
    """Write every row with its audio under out_dir/shards; the entries list the files."""
    readers = {source.name: reader_for(source) for source in sources}
    with ShardWriter(out_dir / SHARDS_DIR, "part-00000", tables.MIX_SHARD) as writer:
        for batch in rows.to_batches(max_chunksize=_BATCH_ROWS):
            audio: list[dict[str, object] | None] = []
            rates: list[int | None] = []
            for row in batch.to_pylist():
                if row["kind"] != "speech":
                    audio.append(None)
                    rates.append(None)
                    continue
                samples, rate = readers[row["source"]].load(row["locator"])
                audio.append({"bytes": encode(samples, rate, "flac"), "path": None})
                rates.append(rate)
            table = pa.Table.from_batches([batch])
            table = table.append_column("audio", pa.array(audio, tables.AUDIO_TYPE))
            writer.write(table.append_column("sampling_rate", pa.array(rates, pa.int32())))
    return [
        MixShardEntry(
            path=str(path.relative_to(out_dir)),
            sha256=sha256_file(path),
            bytes=path.stat().st_size,
            rows=pq.ParquetFile(path).metadata.num_rows,
        )
        for path in writer.paths
    ]
