"""A PyTorch IterableDataset over saladpipe shards, for trainers that want neither
Hugging Face `datasets` nor Lhotse.

Work is split by (shard, row group): each (rank, dataloader worker) pair reads a
disjoint, deterministic subset, so every row is seen exactly once per epoch across
the whole job. Audio is decoded lazily, one row group at a time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch
from torch.utils.data import IterableDataset, get_worker_info

from saladpipe.data_schemas import tables
from saladpipe.tts.audio import decode


@dataclass(frozen=True)
class _Unit:
    """One row group of one shard: the smallest piece of work given to a worker."""

    path: Path
    row_group: int


def shard_paths(source: Path | Sequence[Path]) -> list[Path]:
    """A run folder (its shards/), a folder of shards, or an explicit list of files."""
    if not isinstance(source, Path):
        return sorted(source)
    if (source / "shards").is_dir():
        source = source / "shards"
    if source.is_dir():
        return sorted(source.glob("*.parquet"))
    return [source]


def rank_and_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    if rank is not None and world_size is not None:
        return rank, world_size
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


class ShardDataset(IterableDataset[dict[str, Any]]):
    """Yields one dict per row: the shard columns, with `audio` decoded to float32 samples."""

    def __init__(
        self,
        source: Path | Sequence[Path],
        decode_audio: bool = True,
        shuffle_seed: int | None = None,
        epoch: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        columns: Sequence[str] | None = None,
    ) -> None:
        self.paths = shard_paths(source)
        for path in self.paths:
            tables.check_version(pq.read_schema(path), str(path))
        self.decode_audio = decode_audio
        self.shuffle_seed = shuffle_seed
        self.epoch = epoch
        self.rank, self.world_size = rank_and_world(rank, world_size)
        self.columns = list(columns) if columns is not None else None
        self.units = [
            _Unit(path, group)
            for path in self.paths
            for group in range(pq.ParquetFile(path).num_row_groups)
        ]

    def set_epoch(self, epoch: int) -> None:
        """Change the shuffle order between epochs (same order for the same epoch and seed)."""
        self.epoch = epoch

    def my_units(self, worker_id: int = 0, num_workers: int = 1) -> list[_Unit]:
        """The row groups this (rank, worker) reads: every `world_size * num_workers`-th one."""
        units = list(self.units)
        if self.shuffle_seed is not None:
            order = np.random.default_rng([self.shuffle_seed, self.epoch]).permutation(len(units))
            units = [units[i] for i in order]
        slot = self.rank * num_workers + worker_id
        return units[slot :: self.world_size * num_workers]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker_id, num_workers = (info.id, info.num_workers) if info else (0, 1)
        files: dict[Path, pq.ParquetFile] = {}
        decode_audio = self.decode_audio and (self.columns is None or "audio" in self.columns)
        for unit in self.my_units(worker_id, num_workers):
            if unit.path not in files:
                files[unit.path] = pq.ParquetFile(unit.path)
            rows = files[unit.path].read_row_group(unit.row_group, columns=self.columns).to_pylist()
            for row in rows:
                if decode_audio:
                    row["audio"], _ = decode(row["audio"]["bytes"])
                yield row
