"""A small synthetic run folder for audit tests, written with the pipeline's own schemas.

It has what a real run of this version may or may not have, each switchable: several
selection rounds, per-text gap estimates, shard columns that later features add (ASR
character error rate, voice licence), two voices, a TTS-quarantined pick, a pick whose
synthesis never finished, and the older seven-column cluster statistics. Each clip is a
tone whose pitch encodes its text, so a test can tell which clip it got back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.io import atomic_path, write_table, write_text
from saladpipe.data_schemas.layout import RunLayout
from saladpipe.data_schemas.manifest import Manifest
from saladpipe.tts.audio import encode

RATE = 16000
K = 3
DIM = 8
VOICES = ("en_US-joe-medium", "en_GB-alba-medium")


@dataclass(frozen=True)
class SyntheticRun:
    """Switches for what the folder holds; `build` writes it and returns its root."""

    texts: int = 60
    corpus_shards: int = 2
    picks: tuple[int, ...] = (12, 9)  # texts selected per round
    estimates: bool = True
    extra_columns: bool = True  # asr_cer and tts_license in the shards, CER in cluster stats
    old_stats: bool = False  # round statistics with the seven columns of the first version
    embeddings: bool = True
    quarantined: int = 1  # round-0 picks whose synthesis failed
    unfinished: int = 0  # last-round picks in no shard and no quarantine
    odd_text: str = ""  # replaces text 0 (for escaping tests)
    clip_seconds: float = 0.4


@dataclass(frozen=True)
class BuiltRun:
    """The folder written, with each round's per-text gap and each text's cluster."""

    root: Path
    gaps: list[np.ndarray]
    cluster: np.ndarray


def clip_for(index: int, seconds: float) -> np.ndarray:
    """The tone of text `index`: 200 Hz + 10 Hz per index."""
    t = np.arange(int(RATE * (seconds + 0.005 * (index % 20)))) / RATE
    return (0.3 * np.sin(2 * np.pi * (200 + 10 * index) * t)).astype(np.float32)


def text_of(index: int, spec: SyntheticRun) -> str:
    if index == 0 and spec.odd_text:
        return spec.odd_text
    return f"text {index} about topic {index % K}"


def build(root: Path, spec: SyntheticRun | None = None) -> BuiltRun:
    spec = spec or SyntheticRun()
    layout = RunLayout(root)
    rng = np.random.default_rng(7)
    n = spec.texts
    ids = [f"t{i:03d}" for i in range(n)]
    cluster = np.arange(n) % K
    centers = np.eye(DIM)[:K] * 3
    vectors = centers[cluster] + rng.normal(size=(n, DIM))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    centroids = centers / np.linalg.norm(centers, axis=1, keepdims=True)
    bounds = np.linspace(0, n, spec.corpus_shards + 1).astype(int)
    for s in range(spec.corpus_shards):
        part = np.arange(bounds[s], bounds[s + 1])
        write_table(
            pa.table(
                {
                    "text_id": [ids[i] for i in part],
                    "text": [text_of(i, spec) for i in part],
                    "domain": [f"domain.{i % K}" for i in part],
                    "source": [f"corpus.jsonl:{i + 1}" for i in part],
                }
            ),
            layout.corpus_shard(s),
            tables.CORPUS,
        )
        write_table(
            pa.table(
                {
                    "text_id": [ids[i] for i in part],
                    "cluster": pa.array(cluster[part], pa.int32()),
                    "distance": pa.array(
                        1 - (vectors[part] * centroids[cluster[part]]).sum(1), pa.float32()
                    ),
                }
            ),
            layout.assignments_shard(s),
            tables.ASSIGNMENTS,
        )
        if spec.embeddings:
            write_table(
                pa.table(
                    {
                        "text_id": [ids[i] for i in part],
                        "embedding": pa.FixedSizeListArray.from_arrays(
                            pa.array(vectors[part].astype(np.float32).ravel()), DIM
                        ),
                    }
                ),
                layout.embeddings_shard(s),
                tables.embeddings_schema(DIM),
            )
    with atomic_path(layout.centroids) as tmp, tmp.open("wb") as fh:
        np.save(fh, centroids.astype(np.float32))

    taken = 0
    gaps = []
    for r, count in enumerate(spec.picks):
        rl = layout.for_round(r)
        gap_by_cluster = np.array([0.10, 0.30, 0.20]) + 0.05 * r * np.array([1, -1, 0])
        text_gap = gap_by_cluster[cluster] + 0.01 * rng.normal(size=n)
        gaps.append(text_gap)
        picked = np.arange(taken, taken + count)
        taken += count
        selection = pa.table(
            {
                "text_id": [ids[i] for i in picked],
                "text": [text_of(int(i), spec) for i in picked],
                "domain": [f"domain.{i % K}" for i in picked],
                "cluster": pa.array(cluster[picked], pa.int32()),
                "cluster_gap": pa.array(gap_by_cluster[cluster[picked]]),
                "gap_score": pa.array(text_gap[picked]),
                "selection_round": pa.array(np.full(count, r), pa.int32()),
                "strategy": ["salad"] * count,
                "probability": pa.array(np.full(count, 1.0 / n)),
                "rank": pa.array(np.arange(count)),
            }
        )
        write_table(selection, rl.selection(r), tables.SELECTION)
        _write_stats(rl, cluster, gap_by_cluster, picked, spec.old_stats, spec.extra_columns)
        if spec.estimates:
            for s in range(spec.corpus_shards):
                part = np.arange(bounds[s], bounds[s + 1])
                write_table(
                    pa.table(
                        {
                            "text_id": [ids[i] for i in part],
                            "cluster": pa.array(cluster[part], pa.int32()),
                            "gap": text_gap[part],
                            "gap_spread": np.full(part.size, 0.01),
                            "n_neighbors": pa.array(np.full(part.size, 4), pa.int32()),
                        }
                    ),
                    rl.gap_estimates_shard(s),
                    tables.GAP_ESTIMATES,
                )
        failed = picked[: spec.quarantined] if r == 0 else picked[:0]
        last = r == len(spec.picks) - 1
        unfinished = (
            picked[len(picked) - spec.unfinished :] if last and spec.unfinished else picked[:0]
        )
        made = [int(i) for i in picked if i not in set(failed) and i not in set(unfinished)]
        if made:  # like the flow, a round with nothing synthesized writes no shard
            _write_shard(rl, selection, made, picked, spec)
        if len(failed):
            write_table(
                pa.table(
                    {
                        "stage": ["tts"] * len(failed),
                        "text_id": [ids[i] for i in failed],
                        "source": ["selection"] * len(failed),
                        "reason": ["too_quiet"] * len(failed),
                        "detail": ["rms -60 dBFS < -45"] * len(failed),
                        "text": [text_of(i, spec) for i in failed],
                    }
                ),
                rl.quarantine("tts", 0),
                tables.QUARANTINE,
            )
    manifest = Manifest(
        run_name="synthetic",
        config_hash="0" * 64,
        config={
            "run": {"name": "synthetic"},
            "cluster": {"k": K},
            "select": {"strategy": "salad", "salad": {"gamma": 5.0}},
        },
        created_at="2026-01-01T00:00:00+00:00",
        versions={},
        models={"teacher": "teacher@1", "student": "student@1"},
        counts={"corpus_texts": n, "probes_scored": 3 * K},
        notes=["synthetic run for tests"],
    )
    write_text(manifest.to_json(), layout.manifest)
    return BuiltRun(root, gaps, cluster)


def _write_stats(
    layout: RunLayout,
    cluster: np.ndarray,
    gap: np.ndarray,
    picked: np.ndarray,
    old: bool,
    measured_cer: bool,
) -> None:
    counts = np.bincount(cluster, minlength=K)
    columns = {
        "cluster": pa.array(np.arange(K), pa.int32()),
        "pool_count": pa.array(counts, pa.int64()),
        "pool_share": counts / counts.sum(),
        "probe_count": pa.array(np.full(K, 3), pa.int32()),
        "gap_mean": gap,
        "gap_std": np.full(K, 0.02),
        "probability": (counts * gap**5) / (counts * gap**5).sum(),
    }
    if old:
        with atomic_path(layout.cluster_stats) as tmp:
            pq.write_table(pa.table(columns), tmp)
        return
    columns |= {
        "eligible_count": pa.array(counts, pa.int64()),
        "gap_used": gap,
        "selected": pa.array(np.bincount(cluster[picked], minlength=K), pa.int64()),
        "excluded_reason": pa.nulls(K, pa.string()),
        "cer_mean": pa.nulls(K, pa.float64()),
        "cer_measured": pa.nulls(K, pa.int64()),
    }
    if measured_cer:
        # Cluster 2's probe clips fail the ASR check on average; cluster 1 has none measured.
        columns["cer_mean"] = pa.array([0.04, None, 0.62], pa.float64())
        columns["cer_measured"] = pa.array([3, 0, 3], pa.int64())
        columns["excluded_reason"] = pa.array(
            [None, None, "asr_cluster_cer: mean character error rate 0.620 over 3 clips > 0.5"]
        )
    write_table(pa.table(columns), layout.cluster_stats, tables.CLUSTER_STATS)


def _write_shard(
    layout: RunLayout,
    selection: pa.Table,
    made: list[int],
    picked: np.ndarray,
    spec: SyntheticRun,
) -> None:
    rows = selection.take(pa.array([int(np.flatnonzero(picked == i)[0]) for i in made]))
    clips = [clip_for(i, spec.clip_seconds) for i in made]
    columns = {
        "text_id": rows.column("text_id"),
        "text": rows.column("text"),
        "audio": [
            {"bytes": encode(c, RATE, "flac"), "path": f"t{i:03d}.flac"}
            for i, c in zip(made, clips, strict=True)
        ],
        "sampling_rate": pa.array(np.full(len(made), RATE), pa.int32()),
        "duration_s": pa.array([c.size / RATE for c in clips], pa.float32()),
        **{name: rows.column(name) for name in tables.SELECTION.names[2:]},
        "tts_engine": ["piper"] * len(made),
        "tts_voice": [VOICES[i % 2] for i in made],
    }
    if spec.extra_columns:
        columns["tts_license"] = ["CC0" if i % 2 == 0 else "CC-BY-4.0" for i in made]
        columns["asr_cer"] = pa.array([0.05 * (i % 4) for i in made], pa.float32())
    table = pa.table(columns).replace_schema_metadata(tables.SHARD.metadata)
    with atomic_path(layout.output_shard(0)) as tmp:
        pq.write_table(table, tmp, row_group_size=4)
