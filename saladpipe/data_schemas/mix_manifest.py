"""The mix manifest (mix.json): what a training mix asked of each source and what it took.

Written last: a mix folder without one is not finished. Readers of a mix (its dataset,
`verify`, the mix report) start here; `rows.parquet` (MIX_ROWS) lists every row, and a
materialised mix lists its own shards with their checksums.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from saladpipe.data_schemas.errors import SchemaError

MIX_MANIFEST = "mix.json"
MIX_ROWS_FILE = "rows.parquet"
# 2: sources record their config, format and kind; rows.parquet has format/group/voice/engine.
MIX_MANIFEST_VERSION = 2


def row_seconds(rows: pa.Table, seconds_per_char: float) -> np.ndarray:
    """Each row's seconds: its audio's, or for a text row (no duration) its characters
    times the mix's `seconds_per_char`, the estimate an hours mix counts it by."""
    measured = rows.column("duration_s").to_numpy(zero_copy_only=False).astype(np.float64)
    chars = pc.utf8_length(rows.column("text")).to_numpy(zero_copy_only=False)
    return np.where(np.isnan(measured), chars * seconds_per_char, measured)


@dataclass(frozen=True)
class MixSourceReport:
    """What the mix asked of one source and what it took, in the mix's unit."""

    name: str
    format: str
    kind: str  # "speech" or "text"
    config: dict[str, Any]  # the source's validated config (paths resolved)
    share: float
    available: float
    requested: float
    taken: float
    rows: int
    # Rows left out, by reason: on scan (unusable on their face) or when drawn (audio checks).
    skipped: dict[str, int]


@dataclass(frozen=True)
class MixShardEntry:
    """One shard of a materialised mix, relative to the mix folder."""

    path: str
    sha256: str
    bytes: int
    rows: int


@dataclass
class MixManifest:
    name: str
    seed: int
    unit: str
    total: float
    seconds_per_char: float
    sources: list[MixSourceReport]
    rows_file: str
    rows_sha256: str
    shards: list[MixShardEntry] = field(default_factory=list)
    version: int = MIX_MANIFEST_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def read(cls, folder: Path) -> MixManifest:
        """The manifest of a mix folder; a missing or foreign one is refused by name."""
        path = folder / MIX_MANIFEST
        if not path.is_file():
            raise SchemaError(f"{folder}: not a finished mix (no {MIX_MANIFEST})")
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != MIX_MANIFEST_VERSION:
            raise SchemaError(
                f"{path}: mix manifest version {data.get('version')}, this saladpipe reads "
                f"{MIX_MANIFEST_VERSION}; rebuild the mix"
            )
        data["sources"] = [MixSourceReport(**s) for s in data["sources"]]
        data["shards"] = [MixShardEntry(**s) for s in data["shards"]]
        return cls(**data)

    def source(self, name: str) -> MixSourceReport:
        return next(s for s in self.sources if s.name == name)


def is_mix(folder: Path) -> bool:
    """Whether a folder holds a mix (rather than a run)."""
    return (folder / MIX_MANIFEST).is_file()


@dataclass(frozen=True)
class SampleClip:
    """One sampled row of a mix with its audio, as the mix report plays it.

    Defined here, with the manifest, so that the report (saladpipe.audit) takes clips
    without importing the mix package that loads them.
    """

    source: str
    item_id: str
    text: str
    duration_s: float  # the row's duration as the mix counts it
    wav: bytes  # 16-bit PCM WAV at the source's own sample rate
