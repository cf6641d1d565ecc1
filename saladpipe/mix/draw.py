"""Mix: a training mix from several sources, by target hours or rows, deterministic for a seed.

Sources are saladpipe shards (synthetic speech), NeMo manifests (natural speech) and
text-only data. Each source gets `total * share / sum(shares)` of the mix; rows are
drawn uniformly at random without replacement until its target is met. The mix
manifest lists every source, its share, what was asked and what was taken, and
`rows.parquet` lists every row taken with where to find it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.config import CorpusSection
from saladpipe.data_schemas.errors import ConfigError
from saladpipe.data_schemas.io import write_table, write_text
from saladpipe.data_schemas.mix_config import MixConfig, MixSource
from saladpipe.pipeline.ingest import READERS, Rejected, detect_format, input_files, usable_text
from saladpipe.shards.dataset import shard_paths


@dataclass(frozen=True)
class SourceReport:
    """What the mix asked of one source and what it took."""

    name: str
    kind: str
    path: str
    share: float
    available: float
    requested: float
    taken: float
    rows: int
    skipped: dict[str, int]


def read_shards_source(source: MixSource) -> pa.Table:
    """Rows of saladpipe shards; the locator is `shard path#row index`."""
    parts = []
    for path in shard_paths(source.path):
        tables.check_version(pq.read_schema(path), str(path))
        table = pq.read_table(path, columns=["text_id", "text", "duration_s"])
        locators = [f"{path}#{i}" for i in range(table.num_rows)]
        parts.append(
            pa.table(
                {
                    "item_id": table.column("text_id"),
                    "locator": locators,
                    "text": table.column("text"),
                    "duration_s": pc.cast(table.column("duration_s"), pa.float64()),
                }
            )
        )
    if not parts:
        raise ConfigError(f"config error: source {source.name}: no shards in {source.path}")
    return pa.concat_tables(parts)


def read_nemo_source(source: MixSource) -> pa.Table:
    """A NeMo manifest: one JSON object a line with audio_filepath, text and duration."""
    rows: dict[str, list[object]] = {"item_id": [], "locator": [], "text": [], "duration_s": []}
    with source.path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                audio, text, duration = (
                    record["audio_filepath"],
                    record["text"],
                    float(record["duration"]),
                )
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                raise ConfigError(
                    f"source {source.name}: {source.path}:{lineno} is not a NeMo manifest line "
                    "(needs audio_filepath, text, duration)"
                ) from None
            rows["item_id"].append(str(record.get("id", audio)))
            rows["locator"].append(str(audio))
            rows["text"].append(str(text))
            rows["duration_s"].append(duration)
    return pa.table(
        rows,
        schema=tables.MIX_CANDIDATES,
    )


def read_text_source(source: MixSource) -> tuple[pa.Table, dict[str, int]]:
    """Text-only rows, read and validated as a corpus; unusable rows are counted by reason."""
    corpus = CorpusSection(path=source.path)
    rows: dict[str, list[object]] = {"item_id": [], "locator": [], "text": [], "duration_s": []}
    skipped: dict[str, int] = {}
    for path in input_files(source.path, corpus.format):
        for row in READERS[detect_format(path, corpus.format)](path, corpus):
            usable = usable_text(row, corpus.max_chars)
            if isinstance(usable, Rejected):
                skipped[usable.reason] = skipped.get(usable.reason, 0) + 1
                continue
            rows["item_id"].append(row.text_id)
            rows["locator"].append(f"{path}#{row.source.rsplit(':', 1)[-1]}")
            rows["text"].append(usable.text)
            rows["duration_s"].append(None)
    return pa.table(
        rows,
        schema=tables.MIX_CANDIDATES,
    ), skipped


def row_sizes(table: pa.Table, unit: str, seconds_per_char: float) -> np.ndarray:
    """Each row's size in the mix's unit; text-only rows count as their estimated speech."""
    if unit == "rows":
        return np.ones(table.num_rows)
    seconds = table.column("duration_s").to_numpy(zero_copy_only=False).astype(np.float64)
    chars = np.array([len(t) for t in tables.strings(table.column("text"))], dtype=np.float64)
    seconds = np.where(np.isnan(seconds), chars * seconds_per_char, seconds)
    return seconds / 3600.0


def draw_rows(sizes: np.ndarray, target: float, rng: np.random.Generator) -> np.ndarray:
    """Rows in a random order until their sizes reach `target` (the last one may pass it)."""
    order = rng.permutation(sizes.size)
    reached = np.cumsum(sizes[order])
    count = int(np.searchsorted(reached, target - 1e-12) + 1)
    return order[: min(count, sizes.size)]


def build_mix(config: MixConfig, out_dir: Path) -> list[SourceReport]:
    """Draw every source's share and write rows.parquet and mix.json under out_dir."""
    mix = config.mix
    total_share = sum(s.share for s in config.sources)
    rng = np.random.default_rng(mix.seed)
    parts, reports = [], []
    for source in config.sources:
        skipped: dict[str, int] = {}
        if source.kind == "shards":
            table = read_shards_source(source)
        elif source.kind == "nemo_manifest":
            table = read_nemo_source(source)
        else:
            table, skipped = read_text_source(source)
        sizes = row_sizes(table, mix.unit, mix.seconds_per_char)
        requested = mix.total * source.share / total_share
        available = float(sizes.sum())
        if available < requested and not mix.allow_shortfall:
            raise ConfigError(
                f"source {source.name} holds {available:.3f} {mix.unit}, the mix asks "
                f"{requested:.3f}; lower mix.total or set mix.allow_shortfall = true"
            )
        picks = draw_rows(sizes, requested, rng)
        chosen = table.take(pa.array(picks, pa.int64()))
        parts.append(
            pa.table(
                {
                    "source": [source.name] * chosen.num_rows,
                    "kind": [source.kind] * chosen.num_rows,
                    "item_id": chosen.column("item_id"),
                    "locator": chosen.column("locator"),
                    "text": chosen.column("text"),
                    "duration_s": chosen.column("duration_s"),
                }
            )
        )
        reports.append(
            SourceReport(
                name=source.name,
                kind=source.kind,
                path=str(source.path),
                share=source.share / total_share,
                available=available,
                requested=requested,
                taken=float(sizes[picks].sum()),
                rows=int(picks.size),
                skipped=skipped,
            )
        )
    write_table(pa.concat_tables(parts), out_dir / "rows.parquet", tables.MIX_ROWS)
    summary = {
        "name": mix.name,
        "seed": mix.seed,
        "unit": mix.unit,
        "total": mix.total,
        "seconds_per_char": mix.seconds_per_char,
        "sources": [asdict(r) for r in reports],
        "rows_file": "rows.parquet",
    }
    write_text(json.dumps(summary, indent=2), out_dir / "mix.json")
    return reports
