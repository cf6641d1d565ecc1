"""Small fake inputs for tests, built by helper functions (lhotse style)."""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from saladpipe.corpora.wordnet import build_wordnet_corpus
from saladpipe.data_schemas.config import VoiceSpec
from saladpipe.data_schemas.shard_writer import DEFAULT_LIMITS, ShardLimits
from saladpipe.tts import EngineOptions, SpeechService, TTSEngine, VoiceInfo

# Rows the small end-to-end corpus carries on purpose, with the reason ingest must give.
BAD_ROWS: list[tuple[dict[str, Any] | bytes, str]] = [
    ({"id": "bad-empty", "text": "", "domain": "x"}, "empty"),
    ({"id": "bad-space", "text": "   \t ", "domain": "x"}, "whitespace_only"),
    ({"id": "bad-long", "text": "word " * 200, "domain": "x"}, "too_long"),
    (b'{"id": "bad-utf8", "text": "caf\xe9 au lait"}', "invalid_utf8"),
    (b"{not json", "invalid_json"),
    ({"id": "bad-field", "body": "no text field here"}, "missing_text_field"),
]


def write_jsonl(path: Path, rows: Sequence[dict[str, Any] | bytes]) -> Path:
    """Write JSON lines; bytes rows are written as they are (for broken-input tests)."""
    with path.open("wb") as fh:
        for row in rows:
            fh.write(row if isinstance(row, bytes) else json.dumps(row).encode())
            fh.write(b"\n")
    return path


def small_wordnet_corpus(per_domain: int, seed: int = 0) -> pa.Table:
    """A few real WordNet glosses per domain, for tests that need real English."""
    return build_wordnet_corpus(per_domain=per_domain, seed=seed)


def write_config(
    path: Path, corpus_file: Path, output_dir: Path, **sections: dict[str, Any]
) -> Path:
    """Write a small-run TOML config; keyword sections (`corpus` too) update the defaults,
    and a dict value in a section is a table of its own (`select={"salad": {...}}`)."""
    base: dict[str, dict[str, Any]] = {
        "run": {"name": "test", "seed": 0, "output_dir": str(output_dir)},
        "corpus": {"path": str(corpus_file), "max_chars": 300, "shard_rows": 40},
        "cluster": {"k": 4, "iterations": 10},
        "probe": {"per_cluster": 3, "shard_rows": 8},
        "select": {"strategy": "salad", "budget_texts": 18, "salad": {"gamma": 5.0}},
        "output": {"shard_rows": 8},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    text = "".join(_toml_table(name, values) for name, values in base.items())
    path.write_text(text, encoding="utf-8")
    return path


def _toml_table(name: str, values: dict[str, Any]) -> str:
    """`[name]` with its plain values, then each dict value as the table `[name.key]`."""
    lines = [f"[{name}]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in values.items() if not isinstance(v, dict)]
    tables = [_toml_table(f"{name}.{k}", v) for k, v in values.items() if isinstance(v, dict)]
    return "\n".join(lines) + "\n" + "".join(tables)


@dataclass(frozen=True)
class E2ERun:
    """A finished small run and what the test needs to check it."""

    run_dir: Path
    corpus_path: Path
    exit_code: int
    flow_run_id: str | None


def run_small_e2e(tmp: Path) -> E2ERun:
    """Run the real CLI on 4 domains x 12 glosses plus the bad rows."""
    from saladpipe.cli import main
    from saladpipe.data_schemas.manifest import Manifest

    corpus = small_wordnet_corpus(per_domain=12)
    keep = {"noun.animal", "noun.food", "verb.motion", "noun.time"}
    rows: list[dict[str, Any] | bytes] = [r for r in corpus.to_pylist() if r["domain"] in keep]
    rows += [row for row, _ in BAD_ROWS]
    corpus_path = write_jsonl(tmp / "corpus.jsonl", rows)
    run_dir = tmp / "run"
    # Whisper tiny.en hears every clip; a high max_cer records each CER and quarantines
    # none, so the counts the end-to-end tests check stay the synthesis's own.
    asr = {"asr": {"model": "builtin:whisper-tiny-en", "max_cer": 1000.0}}
    config = write_config(tmp / "run.toml", corpus_path, run_dir, tts=asr)
    code = main(["run", str(config)])
    manifest = (
        Manifest.read(run_dir / "manifest.json") if (run_dir / "manifest.json").exists() else None
    )
    return E2ERun(run_dir, corpus_path, code, manifest.prefect_flow_run_id if manifest else None)


def write_parquet(path: Path, columns: dict[str, list[Any] | pa.Array]) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


class ToneEngine(TTSEngine):
    """A deterministic engine for shard-format tests: each text becomes a known tone."""

    name = "tone"
    RATE = 22050
    needs_normalization = False  # the tone's index is read from the digits
    deterministic = True

    @classmethod
    def describe(cls, spec: VoiceSpec, device: str = "cpu") -> VoiceInfo:
        return VoiceInfo(name="tone", language="en", license="CC0-1.0", deterministic=True)

    @classmethod
    def list_voices(cls) -> list[str]:
        return ["tone"]

    @property
    def sample_rate(self) -> int:
        return self.RATE

    def speakers(self) -> list[str]:
        return []

    def synthesize(self, text: str, seed: int) -> np.ndarray:
        index = int(text.split()[1])
        t = np.arange(int(self.RATE * (1.0 + 0.05 * index))) / self.RATE
        return (0.3 * np.sin(2 * np.pi * (200 + 20 * index) * t)).astype(np.float32)


class FlakyEngine(TTSEngine):
    """The real engine of a voice, made to fail on a share of texts (by a hash of the
    text, the same in every process): a fifth always raise, another fifth raise the
    first time a worker sees them (a passing fault that a retry gets past)."""

    name = "flaky"

    def __init__(self, spec: VoiceSpec, options: EngineOptions) -> None:
        super().__init__(spec, options)
        from saladpipe.tts.registry import create_engine

        self.inner = create_engine(spec, options)
        self.seen: set[str] = set()
        self.needs_normalization = self.inner.needs_normalization

    @staticmethod
    def fault(text: str) -> str | None:
        bucket = zlib.crc32(text.encode()) % 5
        return {0: "always", 1: "once"}.get(bucket)

    @classmethod
    def describe(cls, spec: VoiceSpec, device: str = "cpu") -> VoiceInfo:
        from saladpipe.tts.registry import describe_voice

        return describe_voice(spec, device)

    @classmethod
    def list_voices(cls) -> list[str]:
        return []

    @property
    def sample_rate(self) -> int:
        return self.inner.sample_rate

    def speakers(self) -> list[str]:
        return self.inner.speakers()

    def synthesize(self, text: str, seed: int) -> np.ndarray:
        fault = self.fault(text)
        if fault == "always" or (fault == "once" and text not in self.seen):
            self.seen.add(text)
            raise RuntimeError(f"injected {fault} fault")
        return self.inner.synthesize(text, seed)


def tone_run(
    root: Path, n: int, limits: ShardLimits = DEFAULT_LIMITS
) -> tuple[Path, dict[str, np.ndarray]]:
    """A finished run folder (shards + manifest) whose n clips are tones, 10 texts a
    task, shards sized by `limits`; returns the engine's native audio per text id, to
    compare what loaders decode against."""
    from saladpipe.data_schemas import RunLayout, parse_config
    from saladpipe.pipeline.synthesize import synthesize_output_shard
    from saladpipe.pipeline.write_manifest import write_manifest

    config = parse_config('[corpus]\nbuiltin = "wordnet-domains"\n', "tone run", root)
    layout = RunLayout(root / "run")
    engine = ToneEngine(VoiceSpec(engine="tone"), EngineOptions())
    selection = pa.table(
        {
            "text_id": [f"tone-{i}" for i in range(n)],
            "text": [f"tone {i} for a shard format test" for i in range(n)],
            "domain": ["d"] * n,
            "cluster": pa.array([i % 3 for i in range(n)], pa.int32()),
            "cluster_gap": [0.5] * n,
            "gap_score": [0.5] * n,
            "selection_round": pa.array([0] * n, pa.int32()),
            "strategy": ["salad"] * n,
            "probability": [0.01] * n,
            "rank": list(range(n)),
        }
    )
    shards: list[Path] = []
    with SpeechService(config.tts, config.output.audio_format, 0, factory=ToneEngine) as speech:
        for index, start in enumerate(range(0, n, 10)):
            result = synthesize_output_shard(
                selection.slice(start, 10),
                layout.output_shard(index),
                layout.quarantine("tts", index),
                speech,
                limits,
            )
            shards.extend(result.paths)
    write_manifest(config, layout, shards, {}, {"selected": n}, [])
    audio = {f"tone-{i}": engine.synthesize(f"tone {i}", 0) for i in range(n)}
    return layout.root, audio
