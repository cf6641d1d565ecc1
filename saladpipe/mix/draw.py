"""Draw a training mix: each source's share of a total in hours or rows, deterministic
for a seed.

Each source gets `total * share / sum(shares)` of the mix. Its rows are taken in a
random order (its own stream, from the seed and its name, so adding a source moves no
other source's picks) until its target is met. A speech row is taken only if its
audio exists and decodes; one that does not is counted by reason and the draw goes
on. rows.parquet lists every row taken and mix.json (written last) what each source
was asked, offered and gave.
"""

from __future__ import annotations

import shutil
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.errors import ConfigError
from saladpipe.data_schemas.io import sha256_file, write_table, write_text
from saladpipe.data_schemas.mix_config import MixConfig, MixSource
from saladpipe.data_schemas.mix_manifest import (
    MIX_MANIFEST,
    MIX_ROWS_FILE,
    MixManifest,
    MixSourceReport,
    row_seconds,
)
from saladpipe.mix.materialize import SHARDS_DIR, materialize
from saladpipe.mix.sources import reader_for
from saladpipe.mix.sources.base import SourceReader

_EPSILON = 1e-12


def row_sizes(table: pa.Table, unit: str, seconds_per_char: float) -> np.ndarray:
    """Each row's size in the mix's unit; text-only rows count as their estimated speech."""
    if unit == "rows":
        return np.ones(table.num_rows)
    return row_seconds(table, seconds_per_char) / 3600.0


def source_rng(seed: int, name: str) -> np.random.Generator:
    """The draw order's stream of one source: from the mix seed and the source's name."""
    return np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])


def draw_rows(
    sizes: np.ndarray,
    target: float,
    rng: np.random.Generator,
    problem: Callable[[str], str | None] | None = None,
    locators: Sequence[str] = (),
) -> tuple[np.ndarray, Counter[str]]:
    """Rows in a random order until their sizes reach `target` (the last one may pass it).

    With `problem` (a reader's check) and the rows' `locators`, a row whose check names a
    reason is counted under it and passed over.
    """
    taken: list[int] = []
    reached = 0.0
    skipped: Counter[str] = Counter()
    for index in rng.permutation(sizes.size):
        if reached >= target - _EPSILON:
            break
        if problem is not None:
            reason = problem(locators[index])
            if reason is not None:
                skipped[reason] += 1
                continue
        taken.append(int(index))
        reached += float(sizes[index])
    return np.array(taken, dtype=np.int64), skipped


def _draw_source(
    config: MixConfig, source: MixSource, reader: SourceReader, total_share: float
) -> tuple[pa.Table, MixSourceReport]:
    mix = config.mix
    candidates = reader.scan()
    table = candidates.table
    sizes = row_sizes(table, mix.unit, mix.seconds_per_char)
    requested = mix.total * source.share / total_share
    available = float(sizes.sum())
    if available < requested - _EPSILON and not mix.allow_shortfall:
        raise ConfigError(
            f"source {source.name} holds {available:.3f} {mix.unit}, the mix asks "
            f"{requested:.3f}; lower mix.total or set mix.allow_shortfall = true"
        )
    picks, drawn_skips = draw_rows(
        sizes,
        requested,
        source_rng(mix.seed, source.name),
        reader.problem if source.speech else None,
        tables.strings(table.column("locator")),
    )
    chosen = table.take(pa.array(picks, pa.int64()))
    origin = {
        "source": [source.name] * chosen.num_rows,
        "format": [source.kind] * chosen.num_rows,
        "kind": ["speech" if source.speech else "text"] * chosen.num_rows,
    }
    rows = pa.table({**origin, **{name: chosen.column(name) for name in chosen.column_names}})
    report = MixSourceReport(
        name=source.name,
        format=source.kind,
        kind="speech" if source.speech else "text",
        config=source.model_dump(mode="json"),
        share=source.share / total_share,
        available=available,
        requested=requested,
        taken=float(sizes[picks].sum()),
        rows=int(picks.size),
        skipped=dict(sorted((candidates.skipped + drawn_skips).items())),
    )
    if report.taken < requested - _EPSILON and not mix.allow_shortfall:
        raise ConfigError(
            f"source {source.name}: only {report.taken:.3f} of the {requested:.3f} {mix.unit} "
            f"asked are usable ({report.skipped}); lower mix.total or set "
            "mix.allow_shortfall = true"
        )
    return rows, report


def build_mix(config: MixConfig, out_dir: Path, materialise: bool = False) -> MixManifest:
    """Draw every source's share and write rows.parquet (and, materialising, the mix's
    shards), then mix.json, under out_dir."""
    total_share = sum(s.share for s in config.sources)
    parts, reports = [], []
    for source in config.sources:
        rows, report = _draw_source(config, source, reader_for(source), total_share)
        parts.append(rows)
        reports.append(report)
    (out_dir / MIX_MANIFEST).unlink(missing_ok=True)
    shutil.rmtree(out_dir / SHARDS_DIR, ignore_errors=True)
    rows = pa.concat_tables(parts)
    rows_path = write_table(rows, out_dir / MIX_ROWS_FILE, tables.MIX_ROWS)
    shards = materialize(out_dir, rows, config.sources) if materialise else []
    manifest = MixManifest(
        name=config.mix.name,
        seed=config.mix.seed,
        unit=config.mix.unit,
        total=config.mix.total,
        seconds_per_char=config.mix.seconds_per_char,
        sources=reports,
        rows_file=MIX_ROWS_FILE,
        rows_sha256=sha256_file(rows_path),
        shards=shards,
    )
    write_text(manifest.to_json(), out_dir / MIX_MANIFEST)
    return manifest
