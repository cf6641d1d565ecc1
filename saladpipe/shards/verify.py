"""Verify a run folder against its manifest: missing, extra, truncated or altered files.

Every shard the manifest lists is re-read: its size, checksum, row count and audio
seconds must match, and it must parse as Parquet. Any Parquet file in shards/ that the
manifest does not list is extra. Quarantine tables listed are checked for presence
and row count.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from saladpipe.data_schemas.errors import SchemaError
from saladpipe.data_schemas.io import sha256_file
from saladpipe.data_schemas.layout import RunLayout
from saladpipe.data_schemas.manifest import Manifest
from saladpipe.data_schemas.tables import check_version


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the run folder, with the file it concerns."""

    kind: str  # missing | extra | truncated | altered | unreadable | no_manifest
    path: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.path}: {self.detail}"


def _read_shard_stats(path: Path) -> tuple[int, float]:
    check_version(pq.read_schema(path), str(path))
    table = pq.read_table(path, columns=["duration_s", "audio"])
    audio = table.column("audio")
    if audio.null_count:
        raise ValueError(f"{audio.null_count} rows without audio")
    return table.num_rows, float(pc.sum(table.column("duration_s")).as_py() or 0.0)


def verify_run(run_dir: Path) -> list[Problem]:
    """All problems found; an empty list means the folder matches its manifest."""
    layout = RunLayout(run_dir)
    if not layout.manifest.is_file():
        return [
            Problem(
                "no_manifest",
                str(layout.manifest),
                "the run is not finished or the manifest is gone",
            )
        ]
    manifest = Manifest.read(layout.manifest)
    problems: list[Problem] = []
    listed = set()
    for entry in manifest.shards:
        path = run_dir / entry.path
        listed.add(path.resolve())
        if not path.is_file():
            problems.append(Problem("missing", entry.path, "listed in the manifest, not on disk"))
            continue
        size = path.stat().st_size
        if size < entry.bytes:
            problems.append(
                Problem("truncated", entry.path, f"{size} bytes, manifest says {entry.bytes}")
            )
            continue
        if sha256_file(path) != entry.sha256:
            problems.append(Problem("altered", entry.path, "checksum differs from the manifest"))
            continue
        try:
            rows, seconds = _read_shard_stats(path)
        except (pa.ArrowException, OSError, ValueError, SchemaError) as exc:
            problems.append(Problem("unreadable", entry.path, str(exc).splitlines()[0]))
            continue
        if rows != entry.rows or abs(seconds - entry.audio_seconds) > 1e-3:
            problems.append(
                Problem(
                    "altered",
                    entry.path,
                    f"{rows} rows / {seconds:.3f} s, "
                    f"manifest says {entry.rows} / {entry.audio_seconds:.3f} s",
                )
            )
    if layout.shards_dir.is_dir():
        for path in sorted(layout.shards_dir.iterdir()):
            if path.resolve() not in listed:
                problems.append(
                    Problem("extra", str(path.relative_to(run_dir)), "not listed in the manifest")
                )
    for quarantine in manifest.quarantine:
        path = run_dir / quarantine.path
        if not path.is_file():
            problems.append(
                Problem("missing", quarantine.path, "quarantine table listed, not on disk")
            )
        elif pq.read_metadata(path).num_rows != quarantine.rows:
            problems.append(Problem("altered", quarantine.path, "quarantine row count differs"))
    return problems
