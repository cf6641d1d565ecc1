"""A seeded sample of each speech source of a mix, with its audio, for the mix report.

Clips are loaded through the source's own reader (rebuilt from the config mix.json
records), so the report plays what a trainer of the mix would load. A row whose audio
no longer loads is logged and left out: one bad file must not cost the whole report.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.errors import ConfigError
from saladpipe.data_schemas.io import read_table
from saladpipe.data_schemas.mix_manifest import MixManifest, SampleClip
from saladpipe.mix.draw import source_rng
from saladpipe.mix.sources import recorded_reader
from saladpipe.tts.audio import encode

logger = logging.getLogger("saladpipe")


def sample_clips(mix_dir: Path, per_source: int = 3, seed: int = 0) -> list[SampleClip]:
    """Up to `per_source` rows of each speech source as WAV clips, in the mix's source order.

    Each source draws from its own stream (the seed and its name), so adding a source
    to a mix leaves the other sources' samples as they were.
    """
    if per_source < 0:
        raise ConfigError(f"--clips-per-source: must be at least 0 (got {per_source})")
    manifest = MixManifest.read(mix_dir)
    rows = read_table(mix_dir / manifest.rows_file, tables.MIX_ROWS)
    clips: list[SampleClip] = []
    for report in manifest.sources:
        if report.kind != "speech":
            continue
        own = rows.filter(pc.equal(rows.column("source"), pa.scalar(report.name)))
        picks = source_rng(seed, report.name).choice(
            own.num_rows, min(per_source, own.num_rows), replace=False
        )
        reader = recorded_reader(report)
        for row in own.take(pa.array(np.sort(picks), pa.int64())).to_pylist():
            try:
                samples, rate = reader.load(row["locator"])
            except Exception as exc:  # any decoder failure is the file's: noted, not fatal
                logger.warning(
                    "mix %s: source %s: clip %s left out of the report, its audio did not "
                    "load (%s: %s)",
                    manifest.name,
                    report.name,
                    row["item_id"],
                    type(exc).__name__,
                    exc,
                )
                continue
            clips.append(
                SampleClip(
                    source=report.name,
                    item_id=row["item_id"],
                    text=row["text"],
                    duration_s=row["duration_s"],
                    wav=encode(samples, rate, "wav"),
                )
            )
    return clips
