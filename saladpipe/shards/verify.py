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


def check_listed_file(path: Path, name: str, sha256: str, size: int) -> Problem | None:
    """A file a manifest lists: missing, shorter than listed, or with another checksum."""
    if not path.is_file():
        return Problem("missing", name, "listed in the manifest, not on disk")
    actual = path.stat().st_size
    if actual < size:
        return Problem("truncated", name, f"{actual} bytes, manifest says {size}")
    if sha256_file(path) != sha256:
        return Problem("altered", name, "checksum differs from the manifest")
    return None


def extra_files(folder: Path, listed: set[Path], root: Path) -> list[Problem]:
    """Files in `folder` that the manifest does not list (their paths resolved in `listed`)."""
    if not folder.is_dir():
        return []
    return [
        Problem("extra", str(path.relative_to(root)), "not listed in the manifest")
        for path in sorted(folder.iterdir())
        if path.resolve() not in listed
    ]


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
        if problem := check_listed_file(path, entry.path, entry.sha256, entry.bytes):
            problems.append(problem)
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
    problems += extra_files(layout.shards_dir, listed, run_dir)
    for quarantine in manifest.quarantine:
        path = run_dir / quarantine.path
        if not path.is_file():
            problems.append(
                Problem("missing", quarantine.path, "quarantine table listed, not on disk")
            )
        elif pq.read_metadata(path).num_rows != quarantine.rows:
            problems.append(Problem("altered", quarantine.path, "quarantine row count differs"))
    return problems
