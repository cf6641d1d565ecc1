"""Report size, build time and open time for runs of 1k, 100k and 1M selected rows.

Each run folder is synthesized directly (no TTS): K = 128 clusters, a pool of the
selected texts plus 10%, 384-d embeddings in shards of 50k texts, and output shards
whose audio column holds a real FLAC clip per row (1,000 distinct 0.5 s clips, cycled),
stored the way the pipeline stores it (no compression or dictionary, ~100 MB row groups).

Printed per size, each against a bare baseline measured in the same run:
- build: `build_report` against a bare pyarrow read of what any report must read
  (every selection row, and every shard row without audio);
- open: headless Chromium loading the report (`--dump-dom`, which waits for the load
  event) against the same Chromium loading an empty page.

Usage: .venv/bin/python -m bench.report [--sizes 1000 100000 1000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from saladpipe.audit import RunFolder, build_report
from saladpipe.data_schemas import tables
from saladpipe.data_schemas.layout import RunLayout
from saladpipe.data_schemas.manifest import Manifest
from saladpipe.data_schemas.shard_writer import parquet_options
from saladpipe.tts.audio import encode

K = 128
DIM = 384
CORPUS_SHARD = 50_000
ROW_GROUP_BYTES = 100 * 1024 * 1024
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--mute-audio",
]


def _write(table: pa.Table, path: Path, schema: pa.Schema | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if schema is not None:
        table = table.replace_schema_metadata(schema.metadata)
    pq.write_table(table, path)


def synthesize_run(root: Path, selected: int, seed: int = 0) -> None:
    """A run folder with `selected` picks in round 0, written table by table."""
    rng = np.random.default_rng(seed)
    layout = RunLayout(root)
    pool = selected + selected // 10
    cluster = rng.integers(0, K, size=pool).astype(np.int32)
    centroids = rng.normal(size=(K, DIM)).astype(np.float32)
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    gap = rng.gamma(4.0, 0.01, size=K)
    for s, start in enumerate(range(0, pool, CORPUS_SHARD)):
        rows = np.arange(start, min(pool, start + CORPUS_SHARD))
        ids = pa.array([f"t{i:08d}" for i in rows])
        _write(
            pa.table(
                {
                    "text_id": ids,
                    "text": [
                        f"text {i}: a sentence of the pool in cluster {cluster[i]}." for i in rows
                    ],
                    "domain": pa.nulls(rows.size, pa.string()),
                    "source": ["bench"] * rows.size,
                }
            ),
            layout.corpus_shard(s),
            tables.CORPUS,
        )
        vectors = centroids[cluster[rows]] + 0.8 * rng.normal(size=(rows.size, DIM)).astype(
            np.float32
        )
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        _write(
            pa.table(
                {
                    "text_id": ids,
                    "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), DIM),
                }
            ),
            layout.embeddings_shard(s),
            tables.embeddings_schema(DIM),
        )
        similarity = (vectors * centroids[cluster[rows]]).sum(axis=1)
        _write(
            pa.table(
                {
                    "text_id": ids,
                    "cluster": pa.array(cluster[rows]),
                    "distance": pa.array((1 - similarity).astype(np.float32)),
                }
            ),
            layout.assignments_shard(s),
            tables.ASSIGNMENTS,
        )
    layout.centroids.parent.mkdir(parents=True, exist_ok=True)
    np.save(layout.centroids, centroids)
    picked = np.sort(rng.choice(pool, size=selected, replace=False))
    picked = picked[rng.permutation(selected)]  # rank order is draw order
    counts = np.bincount(cluster, minlength=K)
    weight = counts * gap**5
    _write(
        pa.table(
            {
                "cluster": pa.array(np.arange(K, dtype=np.int32)),
                "pool_count": pa.array(counts.astype(np.int64)),
                "pool_share": counts / pool,
                "probe_count": pa.array(np.full(K, 8, np.int32)),
                "gap_mean": gap,
                "gap_std": gap * 0.2,
                "probability": weight / weight.sum(),
                "eligible_count": pa.array(counts.astype(np.int64)),
                "gap_used": gap,
                "selected": pa.array(np.bincount(cluster[picked], minlength=K).astype(np.int64)),
                "excluded_reason": pa.nulls(K, pa.string()),
            }
        ),
        layout.cluster_stats,
        tables.CLUSTER_STATS,
    )
    ids = pa.array([f"t{i:08d}" for i in picked])
    provenance = {
        "domain": pa.nulls(selected, pa.string()),
        "cluster": pa.array(cluster[picked]),
        "cluster_gap": gap[cluster[picked]],
        "gap_score": gap[cluster[picked]] + rng.normal(0, 0.002, selected),
        "selection_round": pa.array(np.zeros(selected, np.int32)),
        "strategy": pa.array(["salad"] * selected),
        "probability": (weight / weight.sum())[cluster[picked]] / counts[cluster[picked]],
        "rank": pa.array(np.arange(selected, dtype=np.int64)),
    }
    texts = pa.array([f"text {i}: a sentence of the pool in cluster {cluster[i]}." for i in picked])
    _write(
        pa.table({"text_id": ids, "text": texts, **provenance}),
        layout.selection(0),
        tables.SELECTION,
    )
    _write_shards(layout, ids, texts, provenance, selected, rng)
    manifest = Manifest(
        run_name=f"bench-{selected}",
        config_hash="0" * 64,
        config={"cluster": {"k": K}, "select": {"strategy": "salad", "salad": {"gamma": 5.0}}},
        created_at="2026-01-01T00:00:00+00:00",
        versions={},
        models={},
        counts={"corpus_texts": pool, "selected": selected},
    )
    layout.manifest.write_text(manifest.to_json(), encoding="utf-8")


def _write_shards(
    layout: RunLayout,
    ids: pa.Array,
    texts: pa.Array,
    provenance: dict[str, pa.Array | np.ndarray],
    selected: int,
    rng: np.random.Generator,
) -> None:
    """One shard of ~100 MB row groups, written chunk by chunk to bound memory."""
    lengths = rng.integers(4800, 16000, size=1000)  # 0.3 to 1 s at 16 kHz
    distinct = [
        encode(
            (0.3 * np.sin(2 * np.pi * (150 + i) * np.arange(n) / 16000)).astype(np.float32),
            16000,
            "flac",
        )
        for i, n in enumerate(lengths)
    ]
    clip = np.arange(selected) % len(distinct)
    voices = np.array(["en_US-joe-medium", "en_GB-alba-medium"])[rng.integers(0, 2, selected)]
    per_row = np.mean([len(d) for d in distinct]) + 200
    group_rows = max(1, int(ROW_GROUP_BYTES / per_row))
    path = layout.output_shard(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer: pq.ParquetWriter | None = None
    for start in range(0, selected, group_rows):
        rows = slice(start, min(selected, start + group_rows))
        part = clip[rows]
        table = pa.table(
            {
                "text_id": ids[rows],
                "text": texts[rows],
                "audio": pa.StructArray.from_arrays(
                    [
                        pa.array([distinct[i] for i in part], pa.binary()),
                        pa.array([f"{t}.flac" for t in ids[rows].to_pylist()]),
                    ],
                    names=["bytes", "path"],
                ),
                "sampling_rate": pa.array(np.full(part.size, 16000, np.int32)),
                "duration_s": pa.array((lengths[part] / 16000).astype(np.float32)),
                **{name: values[rows] for name, values in provenance.items()},
                "tts_engine": pa.array(["piper"] * part.size),
                "tts_voice": pa.array(voices[rows]),
            }
        )
        if writer is None:
            options = parquet_options(table.schema)
            # pyarrow-stubs types use_dictionary as a bool; pyarrow takes a bool or a list of
            # column names, as its docstring says.
            writer = pq.ParquetWriter(path, table.schema, **options)  # type: ignore[arg-type]
        writer.write_table(table)
    if writer is not None:
        writer.close()


def bare_read(root: Path) -> float:
    """What any report must read: the selection, and the shards without their audio."""
    started = time.perf_counter()
    run = RunFolder.open(root)
    pq.read_table(run.selection_path(0))
    for shard in run.shards():
        columns = [n for n in pq.read_schema(shard).names if n != "audio"]
        pq.read_table(shard, columns=columns)
    return time.perf_counter() - started


def open_seconds(page: Path, profile: Path) -> float:
    """Headless Chromium's wall time to load a local page and print its DOM."""
    command = ["/usr/bin/chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom"]
    started = time.perf_counter()
    subprocess.run([*command, page.resolve().as_uri()], check=True, capture_output=True)
    return time.perf_counter() - started


def best_of(repeats: int, fn: Callable[[], float]) -> float:
    return min(fn() for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000, 1_000_000])
    parser.add_argument("--keep", type=Path, help="keep the synthesized run folders here")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="saladpipe-bench-report-"))
    chromium = Path("/usr/bin/chromium").is_file()
    empty = work / "empty.html"
    work.mkdir(parents=True, exist_ok=True)
    empty.write_text("<!DOCTYPE html><title>empty</title>", encoding="utf-8")
    print(
        f"{'rows':>9} {'setup s':>8} {'build s':>8} {'bare s':>7} {'ratio':>6} "
        f"{'size MB':>8} {'clips':>5} {'open s':>7} {'empty s':>8} {'ratio':>6}"
    )
    try:
        for size in args.sizes:
            root = work / f"run-{size}"
            shutil.rmtree(root, ignore_errors=True)
            started = time.perf_counter()
            synthesize_run(root, size)
            setup = time.perf_counter() - started
            bare = best_of(2, partial(bare_read, root))
            out = root / "report.html"
            results = [build_report(root, out) for _ in range(2)]
            build = min(r.seconds for r in results)
            line = (
                f"{size:>9} {setup:>8.1f} {build:>8.2f} {bare:>7.2f} {build / bare:>6.1f} "
                f"{results[0].bytes / 1e6:>8.2f} {results[0].clips:>5}"
            )
            if chromium:
                profile = work / "profile"
                opened = best_of(3, partial(open_seconds, out, profile))
                blank = best_of(3, partial(open_seconds, empty, profile))
                line += f" {opened:>7.2f} {blank:>8.2f} {opened / blank:>6.2f}"
            print(line, flush=True)
            if args.keep is None:
                shutil.rmtree(root)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
