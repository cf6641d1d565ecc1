"""Small fake inputs for tests, built by helper functions (lhotse style)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from saladpipe.pipeline.corpora.wordnet import build_wordnet_corpus

# Rows the small end-to-end corpus carries on purpose, with the reason ingest must give.
BAD_ROWS: list[tuple[dict[str, Any] | bytes, str]] = [
    ({"id": "bad-empty", "text": "", "domain": "x"}, "empty"),
    ({"id": "bad-space", "text": "   \t ", "domain": "x"}, "whitespace_only"),
    ({"id": "bad-long", "text": "word " * 200, "domain": "x"}, "too_long"),
    (b'{"id": "bad-utf8", "text": "caf\xe9 au lait"}', "invalid_utf8"),
    (b"{not json", "invalid_json"),
    ({"id": "bad-field", "body": "no text field here"}, "missing_text_field"),
]


def write_jsonl(path: Path, rows: list[dict[str, Any] | bytes]) -> Path:
    """Write JSON lines; bytes rows are written as they are (for broken-input tests)."""
    with path.open("wb") as fh:
        for row in rows:
            fh.write(row if isinstance(row, bytes) else json.dumps(row).encode())
            fh.write(b"\n")
    return path


def small_wordnet_corpus(per_domain: int, seed: int = 0) -> pa.Table:
    """A few real WordNet glosses per domain, for tests that need real English."""
    return build_wordnet_corpus(per_domain=per_domain, seed=seed)


def write_config(path: Path, corpus: Path, output_dir: Path, **sections: dict[str, Any]) -> Path:
    """Write a small-run TOML config; keyword sections override the defaults below."""
    base: dict[str, dict[str, Any]] = {
        "run": {"name": "test", "seed": 0, "output_dir": str(output_dir)},
        "corpus": {"path": str(corpus), "max_chars": 300, "shard_rows": 40},
        "cluster": {"k": 4, "iterations": 10},
        "probe": {"per_cluster": 3, "shard_rows": 8},
        "select": {"strategy": "salad", "gamma": 5.0, "budget_texts": 18},
        "output": {"shard_rows": 8},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    lines = []
    for name, values in base.items():
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in values.items())
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


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
    config = write_config(tmp / "run.toml", corpus_path, run_dir)
    code = main(["run", str(config)])
    manifest = (
        Manifest.read(run_dir / "manifest.json") if (run_dir / "manifest.json").exists() else None
    )
    return E2ERun(run_dir, corpus_path, code, manifest.prefect_flow_run_id if manifest else None)


def write_parquet(path: Path, columns: dict[str, list[Any]]) -> Path:
    pq.write_table(pa.table(columns), path)
    return path
