"""Where each table of a run lives inside the run folder.

One place names every path, so stages, flows, audits and `verify` agree on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunLayout:
    """Paths of a run folder; `root` is the folder the user chose."""

    root: Path

    @property
    def state(self) -> Path:
        """Working state that is not output: the local Prefect server's database, logs."""
        return self.root / "state"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def config_copy(self) -> Path:
        return self.root / "config.json"

    def corpus_shard(self, index: int) -> Path:
        return self.root / "corpus" / f"part-{index:05d}.parquet"

    def quarantine(self, stage: str, index: int = 0) -> Path:
        return self.root / "quarantine" / f"{stage}-{index:05d}.parquet"

    def embeddings_shard(self, index: int) -> Path:
        return self.root / "embeddings" / f"part-{index:05d}.parquet"

    @property
    def centroids(self) -> Path:
        return self.root / "clusters" / "centroids.npy"

    def assignments_shard(self, index: int) -> Path:
        return self.root / "clusters" / f"assignments-{index:05d}.parquet"

    @property
    def cluster_stats(self) -> Path:
        return self.root / "clusters" / "cluster_stats.parquet"

    def probes_shard(self, index: int) -> Path:
        return self.root / "probes" / f"probes-{index:05d}.parquet"

    def probe_clips_shard(self, index: int) -> Path:
        return self.root / "probes" / f"clips-{index:05d}.parquet"

    def scores_shard(self, index: int) -> Path:
        return self.root / "scores" / f"part-{index:05d}.parquet"

    def gap_estimates_shard(self, index: int) -> Path:
        """Per-text gap estimates, one shard per assignments shard."""
        return self.root / "scores" / f"estimates-{index:05d}.parquet"

    def selection(self, round_index: int) -> Path:
        return self.root / "selection" / f"round-{round_index:03d}.parquet"

    def output_shard(self, index: int) -> Path:
        return self.root / "shards" / f"part-{index:05d}.parquet"

    @property
    def shards_dir(self) -> Path:
        return self.root / "shards"

    @property
    def quarantine_dir(self) -> Path:
        return self.root / "quarantine"
