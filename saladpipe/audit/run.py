"""A read-only view of a run folder for audits: its rounds and the tables each wrote.

Tables are read by column name and only when present, so that an audit works on
runs made before a feature existed (per-text gap estimates, several rounds, ASR
checks): callers turn what is absent into a "not measured in this run" note.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from saladpipe.data_schemas.errors import ConfigError
from saladpipe.data_schemas.layout import RunLayout
from saladpipe.data_schemas.manifest import Manifest

_SELECTION = re.compile(r"^round-(\d{3})\.parquet$")


def read_columns(path: Path, wanted: Sequence[str] | None = None) -> pa.Table:
    """The columns of `wanted` that the file has (all but `audio` when None)."""
    names = pq.read_schema(path).names
    columns = [n for n in names if n != "audio"] if wanted is None else wanted
    return pq.read_table(path, columns=[c for c in columns if c in names])


def concat(parts: Sequence[pa.Table]) -> pa.Table | None:
    """Tables of differing column sets stacked; a column one part lacks is null there."""
    if not parts:
        return None
    return pa.concat_tables(parts, promote_options="permissive")


@dataclass(frozen=True)
class TaggedFile:
    """A per-round table file: `<stem>[-rNNN]-<index>.parquet`."""

    path: Path
    stem: str
    round: int
    index: int


def tagged_files(folder: Path, stem: str) -> list[TaggedFile]:
    """Files of `stem` in `folder` with their round (0 when untagged) and index."""
    pattern = re.compile(rf"^{re.escape(stem)}(?:-r(\d{{3}}))?-(\d{{5}})\.parquet$")
    found = []
    for path in sorted(folder.glob(f"{stem}*.parquet")) if folder.is_dir() else []:
        match = pattern.match(path.name)
        if match:
            found.append(TaggedFile(path, stem, int(match.group(1) or 0), int(match.group(2))))
    return found


@dataclass(frozen=True)
class RunFolder:
    """The files of one run folder, found by the names `RunLayout` gives them."""

    root: Path

    @classmethod
    def open(cls, root: Path) -> RunFolder:
        """Refuse a folder that holds no selection: there is nothing to audit yet."""
        if not root.is_dir():
            raise ConfigError(f"run folder not found: {root}")
        run = cls(root)
        if not run.rounds:
            raise ConfigError(
                f"{root} holds no selection (no selection/round-*.parquet): "
                "not a run folder, or its run stopped before selecting"
            )
        return run

    @property
    def layout(self) -> RunLayout:
        return RunLayout(self.root)

    @cached_property
    def manifest(self) -> Manifest | None:
        """The manifest, or None for a run that has not finished."""
        path = self.layout.manifest
        return Manifest.read(path) if path.is_file() else None

    @cached_property
    def config(self) -> dict[str, Any]:
        """The run's validated config as JSON data (from the manifest, else config.json)."""
        if self.manifest is not None:
            return self.manifest.config
        path = self.layout.config_copy
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    @cached_property
    def rounds(self) -> list[int]:
        """Selection rounds that wrote a selection, in order."""
        folder = self.root / "selection"
        found = [_SELECTION.match(p.name) for p in folder.glob("round-*.parquet")]
        return sorted(int(m.group(1)) for m in found if m) if folder.is_dir() else []

    @property
    def name(self) -> str:
        if self.manifest is not None:
            return self.manifest.run_name
        return str(self.config.get("run", {}).get("name") or self.root.name)

    def selection_path(self, round_index: int) -> Path:
        return self.layout.selection(round_index)

    def cluster_stats(self, round_index: int) -> pa.Table | None:
        path = self.layout.for_round(round_index).cluster_stats
        return read_columns(path) if path.is_file() else None

    def shards(self) -> list[Path]:
        """Output shards on disk, every round's."""
        return [f.path for f in tagged_files(self.root / "shards", "part")]

    def quarantine(self) -> list[TaggedFile]:
        """Quarantine tables of every stage and round."""
        folder = self.layout.quarantine_dir
        stems = {p.name.split("-")[0] for p in folder.glob("*.parquet")} if folder.is_dir() else []
        return sorted(
            (f for stem in stems for f in tagged_files(folder, stem)),
            key=lambda f: (f.round, f.path.name),
        )

    def gap_estimates(self, round_index: int) -> dict[int, Path]:
        """Per-text gap estimate shards of one round, by assignments-shard index."""
        files = tagged_files(self.root / "scores", "estimates")
        return {f.index: f.path for f in files if f.round == round_index}

    def assignments(self) -> dict[int, Path]:
        return {f.index: f.path for f in tagged_files(self.root / "clusters", "assignments")}

    def embeddings(self) -> dict[int, Path]:
        return {f.index: f.path for f in tagged_files(self.root / "embeddings", "part")}

    def corpus(self) -> dict[int, Path]:
        return {f.index: f.path for f in tagged_files(self.root / "corpus", "part")}

    def centroids(self) -> np.ndarray | None:
        """The cluster centroids (K x D), or None when the run folder lacks them."""
        path = self.layout.centroids
        return np.load(path, allow_pickle=False) if path.is_file() else None
