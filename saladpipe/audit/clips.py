"""Read a few clips out of shards without loading the rest.

Shards hold row groups of about 100 MB; a clip is fetched by reading only the audio
column of the row groups that hold the wanted rows, one row group at a time.
"""

from __future__ import annotations

import base64
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import pyarrow.parquet as pq

from saladpipe.tts.audio import decode, encode

_MAGIC = ((b"fLaC", "audio/flac"), (b"RIFF", "audio/wav"), (b"OggS", "audio/ogg"))


def read_clips(root: Path, refs: Sequence[tuple[str, int]]) -> list[bytes]:
    """Encoded audio of each (shard path relative to root, row in shard), in order of refs."""
    wanted: dict[str, list[int]] = defaultdict(list)
    for position, (shard, _) in enumerate(refs):
        wanted[shard].append(position)
    found: list[bytes | None] = [None] * len(refs)
    for shard, positions in wanted.items():
        parquet = pq.ParquetFile(root / shard)
        sizes = [parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups)]
        starts = np.concatenate([[0], np.cumsum(sizes)])
        rows = np.array([refs[p][1] for p in positions], dtype=np.int64)
        groups = np.searchsorted(starts, rows, side="right") - 1
        for group in np.unique(groups):
            inside = np.flatnonzero(groups == group)
            audio = parquet.read_row_group(int(group), columns=["audio"]).column("audio")
            # Every shard row has an audio struct (a required column); its bytes may be null.
            taken = cast(
                "list[dict[str, Any]]", audio.take(rows[inside] - starts[group]).to_pylist()
            )
            for index, clip in zip(inside.tolist(), taken, strict=True):
                found[positions[index]] = clip["bytes"]
    missing = [refs[i] for i, clip in enumerate(found) if clip is None]
    if missing:
        raise ValueError(f"{missing[0][0]}: row {missing[0][1]} has no audio")
    return [clip for clip in found if clip is not None]


def mime_type(data: bytes) -> str:
    """The media type of encoded audio, from its first bytes."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    return "application/octet-stream"


def data_uri(data: bytes) -> str:
    """Encoded audio as a data URI, so that a report plays it without any other file."""
    return f"data:{mime_type(data)};base64,{base64.b64encode(data).decode('ascii')}"


def to_wav(data: bytes) -> bytes:
    """Encoded audio (FLAC, WAV, Opus) as 16-bit PCM WAV at its own sample rate."""
    samples, rate = decode(data)
    return encode(samples, rate, "wav")
