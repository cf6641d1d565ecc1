"""Where each table of a run lives inside the run folder.

One place names every path, so stages, flows, audits and `verify` agree on them.

A layout for round r >= 1 (`for_round`) names that round's own files with an `r00N`
tag (scores, estimates, cluster statistics, shards, quarantine), so that a later round
never overwrites an earlier one; round 0 keeps the plain names. Corpus, embeddings,
clusters and probes are made once, in round 0, and shared by every round.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def cache_dir() -> Path:
    """Where built models and corpora are cached, shared by every run on this machine:
    $SALADPIPE_CACHE, else ~/.cache/saladpipe."""
    if configured := os.environ.get("SALADPIPE_CACHE"):
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "saladpipe"


@dataclass(frozen=True)
class RunLayout:
    """Paths of a run folder; `root` is the folder the user chose."""

    root: Path
    round_index: int = 0

    def for_round(self, round_index: int) -> RunLayout:
        """The same folder, naming the files of another selection round."""
        return RunLayout(self.root, round_index)

    def _tag(self, stem: str) -> str:
        return stem if self.round_index == 0 else f"{stem}-r{self.round_index:03d}"

    @property
    def state(self) -> Path:
        """Working state that is not output: the local Prefect server's database, logs."""
        return self.root / "state"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def done_dir(self) -> Path:
        """Completion records of finished tasks (saladpipe/flows/completion.py)."""
        return self.state / "done"

    @property
    def digests_dir(self) -> Path:
        """Cached sha256 of the files tasks read and write (data_schemas/digests.py)."""
        return self.state / "digests"

    @property
    def config_copy(self) -> Path:
        return self.root / "config.json"

    def corpus_shard(self, index: int) -> Path:
        return self.root / "corpus" / f"part-{index:05d}.parquet"

    def corpus_splits_shard(self, index: int) -> Path:
        """Where the texts of corpus shard `index` split (split-column corpora only)."""
        return self.root / "corpus" / f"splits-{index:05d}.parquet"

    def quarantine(self, stage: str, index: int = 0) -> Path:
        return self.root / "quarantine" / f"{self._tag(stage)}-{index:05d}.parquet"

    def embeddings_shard(self, index: int) -> Path:
        return self.root / "embeddings" / f"part-{index:05d}.parquet"

    @property
    def centroids(self) -> Path:
        return self.root / "clusters" / "centroids.npy"

    def assignments_shard(self, index: int) -> Path:
        return self.root / "clusters" / f"assignments-{index:05d}.parquet"

    def cluster_preferences(self, index: int) -> Path:
        """Balanced k-means: each text's nearest centroids, until the pool-wide matching."""
        return self.root / "clusters" / f"preferences-{index:05d}.npz"

    @property
    def cluster_stats(self) -> Path:
        return self.root / "clusters" / f"{self._tag('cluster_stats')}.parquet"

    def probes_shard(self, index: int) -> Path:
        return self.root / "probes" / f"probes-{index:05d}.parquet"

    def probe_clips_shard(self, index: int) -> Path:
        return self.root / "probes" / f"clips-{index:05d}.parquet"

    @property
    def probe_embeddings(self) -> Path:
        """The embeddings of every probe text, gathered once for gap propagation."""
        return self.root / "probes" / "embeddings.parquet"

    def scores_shard(self, index: int) -> Path:
        return self.root / "scores" / f"{self._tag('part')}-{index:05d}.parquet"

    def gap_estimates_shard(self, index: int) -> Path:
        """Per-text gap estimates, one shard per assignments shard."""
        return self.root / "scores" / f"{self._tag('estimates')}-{index:05d}.parquet"

    def selection(self, round_index: int) -> Path:
        return self.root / "selection" / f"round-{round_index:03d}.parquet"

    def output_shard(self, index: int) -> Path:
        return self.root / "shards" / f"{self._tag('part')}-{index:05d}.parquet"

    @property
    def shards_dir(self) -> Path:
        return self.root / "shards"

    @property
    def quarantine_dir(self) -> Path:
        return self.root / "quarantine"

    @property
    def ledger_dir(self) -> Path:
        """What every round selected and synthesized; kept across rounds, cleared by overwrite."""
        return self.state / "ledger"

    def ledger_texts(self, round_index: int) -> Path:
        return self.ledger_dir / f"round-{round_index:03d}.parquet"

    def ledger_round(self, round_index: int) -> Path:
        """The record of a finished round; its presence means the round completed."""
        return self.ledger_dir / f"round-{round_index:03d}.json"
