"""Verify a mix folder against its manifest, as `saladpipe verify` does a run folder.

rows.parquet and every shard of a materialised mix must match their checksums and
row counts, with nothing extra in shards/. A mix that is not materialised points into
its sources, so every speech row's audio must still exist and decode.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from saladpipe.data_schemas.errors import SchemaError
from saladpipe.data_schemas.io import sha256_file
from saladpipe.data_schemas.mix_manifest import MIX_MANIFEST, MixManifest
from saladpipe.data_schemas.tables import check_version
from saladpipe.mix.materialize import SHARDS_DIR
from saladpipe.mix.sources import recorded_reader
from saladpipe.shards.verify import Problem, check_listed_file, extra_files


def _row_count(path: Path) -> int:
    check_version(pq.read_schema(path), str(path))
    return pq.ParquetFile(path).metadata.num_rows


def _rows_problems(mix_dir: Path, manifest: MixManifest) -> list[Problem]:
    path = mix_dir / manifest.rows_file
    if not path.is_file():
        return [Problem("missing", manifest.rows_file, "listed in the manifest, not on disk")]
    if sha256_file(path) != manifest.rows_sha256:
        return [Problem("altered", manifest.rows_file, "checksum differs from the manifest")]
    expected = sum(source.rows for source in manifest.sources)
    rows = _row_count(path)
    if rows != expected:
        return [Problem("altered", manifest.rows_file, f"{rows} rows, sources took {expected}")]
    return []


def _shard_problems(mix_dir: Path, manifest: MixManifest) -> list[Problem]:
    problems, listed = [], set()
    for entry in manifest.shards:
        path = mix_dir / entry.path
        listed.add(path.resolve())
        if problem := check_listed_file(path, entry.path, entry.sha256, entry.bytes):
            problems.append(problem)
            continue
        try:
            rows = _row_count(path)
        except (pa.ArrowException, OSError, SchemaError) as exc:
            problems.append(Problem("unreadable", entry.path, str(exc).splitlines()[0]))
            continue
        if rows != entry.rows:
            problems.append(
                Problem("altered", entry.path, f"{rows} rows, manifest says {entry.rows}")
            )
    return problems + extra_files(mix_dir / SHARDS_DIR, listed, mix_dir)


def _source_problems(mix_dir: Path, manifest: MixManifest) -> list[Problem]:
    """Every speech row's audio, through its source's reader."""
    rows = pq.read_table(mix_dir / manifest.rows_file, columns=["source", "kind", "locator"])
    readers = {s.name: recorded_reader(s) for s in manifest.sources if s.kind == "speech"}
    problems = []
    for row in rows.to_pylist():
        if row["kind"] == "speech" and (reason := readers[row["source"]].problem(row["locator"])):
            problems.append(Problem(reason, row["locator"], f"row of source {row['source']}"))
    return problems


def verify_mix(mix_dir: Path) -> list[Problem]:
    """All problems found; an empty list means the mix matches its manifest."""
    try:
        manifest = MixManifest.read(mix_dir)
    except SchemaError as exc:
        return [Problem("no_manifest", str(mix_dir / MIX_MANIFEST), str(exc))]
    try:
        problems = _rows_problems(mix_dir, manifest)
        if problems:
            return problems
        if manifest.shards:
            return _shard_problems(mix_dir, manifest)
        return _source_problems(mix_dir, manifest)
    except (pa.ArrowException, OSError, SchemaError) as exc:
        return [Problem("unreadable", str(mix_dir), str(exc).splitlines()[0])]
