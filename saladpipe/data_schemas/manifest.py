"""The run manifest: what a finished run holds, and how to check it.

Written last and atomically: a run folder without a manifest is not finished.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# 2: the run's voices (`voices`); a version 1 manifest reads with none.
MANIFEST_VERSION = 2


@dataclass(frozen=True)
class ShardEntry:
    """One output shard: its path relative to the run folder and what it holds."""

    path: str
    sha256: str
    bytes: int
    rows: int
    audio_seconds: float


@dataclass(frozen=True)
class QuarantineEntry:
    """One quarantine table: which stage put rows there and why."""

    stage: str
    path: str
    rows: int
    reasons: dict[str, int]


@dataclass(frozen=True)
class VoiceEntry:
    """One voice of the run, and whether its clips are the same in every run of the config."""

    engine: str
    voice: str
    license: str
    deterministic: bool


@dataclass
class Manifest:
    """Config, its hash, versions, voices, counts, shard checksums and quarantine of one run."""

    run_name: str
    config_hash: str
    config: dict[str, Any]
    created_at: str
    versions: dict[str, str]
    models: dict[str, str]
    counts: dict[str, int]
    shards: list[ShardEntry] = field(default_factory=list)
    quarantine: list[QuarantineEntry] = field(default_factory=list)
    voices: list[VoiceEntry] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    prefect_flow_run_id: str | None = None
    manifest_version: int = MANIFEST_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        raw = json.loads(text)
        raw["shards"] = [ShardEntry(**s) for s in raw.get("shards", [])]
        raw["quarantine"] = [QuarantineEntry(**q) for q in raw.get("quarantine", [])]
        raw["voices"] = [VoiceEntry(**v) for v in raw.get("voices", [])]
        return cls(**raw)

    @classmethod
    def read(cls, path: Path) -> Manifest:
        return cls.from_json(path.read_text(encoding="utf-8"))
