"""Shard write and read throughput against bare pyarrow, in one run.

Write: the pipeline's ShardWriter (audio uncompressed and undictionaried, row groups
of ~100 MB, atomic rename) against a bare `pyarrow.parquet.write_table` of the same
rows. Read: ShardDataset (row-group units, rank/worker split) against a bare pyarrow
scan that turns the same row groups into Python rows; with audio decoding, against a
bare loop that decodes the same FLAC bytes with soundfile.

Usage: .venv/bin/python -m bench.shards [--rows 1500] [--seconds 4]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.shard_writer import ShardWriter
from saladpipe.shards.dataset import ShardDataset
from saladpipe.tts.audio import decode, encode


def make_rows(n: int, seconds: float) -> pa.Table:
    rng = np.random.default_rng(0)
    t = np.arange(int(16000 * seconds)) / 16000
    clips = []
    for i in range(n):
        wave = 0.2 * np.sin(2 * np.pi * (150 + i % 300) * t) + 0.02 * rng.standard_normal(t.size)
        clips.append(
            {"bytes": encode(wave.astype(np.float32), 16000, "flac"), "path": f"c{i}.flac"}
        )
    return pa.table(
        {
            "text_id": [f"t{i}" for i in range(n)],
            "text": [f"text number {i} of the bench" for i in range(n)],
            "audio": clips,
            "sampling_rate": pa.array([16000] * n, pa.int32()),
            "duration_s": pa.array([seconds] * n, pa.float32()),
            "domain": ["d"] * n,
            "cluster": pa.array([i % 128 for i in range(n)], pa.int32()),
            "cluster_gap": [0.1] * n,
            "gap_score": [0.1] * n,
            "selection_round": pa.array([0] * n, pa.int32()),
            "strategy": ["salad"] * n,
            "probability": [1e-4] * n,
            "rank": list(range(n)),
            "tts_engine": ["piper"] * n,
            "tts_voice": ["en_US-joe-medium"] * n,
            "normalized_text": [f"text number {i} of the bench" for i in range(n)],
            "tts_license": ["CC0-1.0"] * n,
            "asr_cer": pa.array([None] * n, pa.float32()),
        }
    )


def best_of(repeats: int, fn: Callable[[], None]) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1500)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    table = tables.conform(make_rows(args.rows, args.seconds), tables.SHARD)
    mb = table.nbytes / 1e6
    print(f"{args.rows} rows of {args.seconds:.0f} s FLAC audio, {mb:.0f} MB in memory")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)

        def pipeline_write() -> None:
            with ShardWriter(root / "ours", "part", tables.SHARD) as writer:
                for start in range(0, table.num_rows, 100):
                    writer.write(table.slice(start, 100))

        def bare_write() -> None:
            pq.write_table(table, root / "bare.parquet")

        ours_w, bare_w = best_of(args.repeats, pipeline_write), best_of(args.repeats, bare_write)
        print(
            f"write: ShardWriter {mb / ours_w:7.1f} MB/s, "
            f"bare write_table {mb / bare_w:7.1f} MB/s, "
            f"ratio {bare_w / ours_w:.2f} (goal >= 0.9)"
        )

        shards = sorted((root / "ours").glob("*.parquet"))

        def dataset_read(decode_audio: bool) -> None:
            for _ in ShardDataset(shards, decode_audio=decode_audio, rank=0, world_size=1):
                pass

        def bare_read(decode_audio: bool) -> None:
            for path in shards:
                parquet = pq.ParquetFile(path)
                for group in range(parquet.num_row_groups):
                    for row in parquet.read_row_group(group).to_pylist():
                        if decode_audio:
                            decode(row["audio"]["bytes"])

        for decode_audio in (False, True):
            ours_r = best_of(args.repeats, partial(dataset_read, decode_audio))
            bare_r = best_of(args.repeats, partial(bare_read, decode_audio))
            label = "rows + FLAC decode" if decode_audio else "rows"
            print(
                f"read ({label}): ShardDataset {args.rows / ours_r:8.0f} rows/s, bare pyarrow "
                f"{args.rows / bare_r:8.0f} rows/s, ratio {bare_r / ours_r:.2f}"
            )


if __name__ == "__main__":
    main()
