"""A training mix as a PyTorch IterableDataset, ready for a trainer as it is.

It reads a mix folder (mix.json + rows.parquet, and the mix's own shards when it was
materialised) and streams its rows with the sources interleaved by their shares
(mix/order.py), in an order fixed by the seed and epoch. Rows are split over ranks
(`torch.distributed`, or RANK/WORLD_SIZE) and dataloader workers, each holding every
source's share, so every row is read once per epoch across the job. Speech rows
carry their decoded audio; text rows carry `audio` None. Each example names its
source, its kind (speech or text) and where it came from.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from torch.utils.data import IterableDataset, get_worker_info

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.mix_manifest import MixManifest
from saladpipe.mix.order import slot_order
from saladpipe.mix.sources import recorded_reader
from saladpipe.mix.sources.base import SourceReader
from saladpipe.mix.sources.parquet_rows import row_value
from saladpipe.shards.dataset import rank_and_world
from saladpipe.tts.audio import decode


class MixDataset(IterableDataset[dict[str, Any]]):
    """Yields one dict per mix row: source, kind, format, item_id, text, duration_s, group,
    voice, engine, locator, and `audio` (float32 samples) with `sampling_rate`."""

    def __init__(
        self,
        mix_dir: Path,
        seed: int | None = None,
        epoch: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        decode_audio: bool = True,
    ) -> None:
        self.mix_dir = mix_dir
        self.manifest = MixManifest.read(mix_dir)
        rows = pq.read_table(mix_dir / self.manifest.rows_file)
        tables.check_version(rows.schema, str(mix_dir / self.manifest.rows_file))
        self.rows = rows.to_pylist()
        names = [s.name for s in self.manifest.sources]
        self.source_of_row = np.array([names.index(r["source"]) for r in self.rows], np.int64)
        self.seed = self.manifest.seed if seed is None else seed
        self.epoch = epoch
        self.rank, self.world_size = rank_and_world(rank, world_size)
        self.decode_audio = decode_audio
        self._readers: dict[str, SourceReader] = {}

    def __len__(self) -> int:
        """Rows in the whole mix (all ranks and workers together)."""
        return len(self.rows)

    def set_epoch(self, epoch: int) -> None:
        """Change the order between epochs (the same order for the same seed and epoch)."""
        self.epoch = epoch

    def my_rows(self, worker_id: int = 0, num_workers: int = 1) -> np.ndarray:
        """The rows this (rank, worker) reads this epoch, in order."""
        slot = self.rank * num_workers + worker_id
        slots = self.world_size * num_workers
        return slot_order(self.source_of_row, self.seed, self.epoch, slot, slots)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker_id, num_workers = (info.id, info.num_workers) if info else (0, 1)
        for index in self.my_rows(worker_id, num_workers):
            yield self.example(int(index))

    def example(self, index: int) -> dict[str, Any]:
        """Row `index` of rows.parquet as the dataset yields it."""
        example = dict(self.rows[index])
        example["audio"], example["sampling_rate"] = None, None
        if self.decode_audio and example["kind"] == "speech":
            example["audio"], example["sampling_rate"] = self._audio(index)
        return example

    def _audio(self, index: int) -> tuple[np.ndarray, int]:
        """From the mix's own shards when materialised, else from the source itself."""
        if self.manifest.shards:
            shard, offset = self._shard_row(index)
            return decode(row_value(self.mix_dir / shard, offset, "audio")["bytes"])
        row = self.rows[index]
        return self._reader(row["source"]).load(row["locator"])

    def _shard_row(self, index: int) -> tuple[str, int]:
        for shard in self.manifest.shards:
            if index < shard.rows:
                return shard.path, index
            index -= shard.rows
        raise IndexError(f"row {index} is in no shard of {self.mix_dir}")

    def _reader(self, name: str) -> SourceReader:
        if name not in self._readers:
            self._readers[name] = recorded_reader(self.manifest.source(name))
        return self._readers[name]
