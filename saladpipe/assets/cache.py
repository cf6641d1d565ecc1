"""Convert once, keep forever: a cache of assets built from installed packages' files.

An entry is built in a staging folder next to its final one and renamed into place,
so it is either whole or absent; a file lock makes a second process wait for the first
instead of converting twice. Each entry records where it came from and the sha256 of
every file it holds (`saladpipe_asset.json`), and every later use checks those sums:
a damaged entry is rebuilt, with a warning, rather than loaded.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from saladpipe.progress import logger

RECORD_FILE = "saladpipe_asset.json"


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive `flock` on `path` (created if missing); the kernel frees it if we die."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks so large weights need no memory."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class AssetKey:
    """What an asset is converted from: a new package version or converter makes a new entry."""

    packages: tuple[tuple[str, str], ...]  # (distribution, version), in order
    licence: str
    sources: tuple[tuple[str, Path], ...]  # (label, file) of every file the conversion reads
    format_version: int  # bumped whenever the converter's output changes

    def folder_name(self, name: str) -> str:
        """`name-<12 hex>`, the hex from the package versions and the format version."""
        identity = json.dumps([self.packages, self.format_version])
        return f"{name}-{hashlib.sha256(identity.encode()).hexdigest()[:12]}"


def _output_sums(folder: Path) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): sha256_file(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != RECORD_FILE
    }


def damage(folder: Path) -> str | None:
    """Why a cache entry cannot be used (missing record, missing/extra/changed file), or None."""
    try:
        recorded = json.loads((folder / RECORD_FILE).read_text(encoding="utf-8"))["outputs"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"no readable {RECORD_FILE}"
    found = _output_sums(folder)
    if changed := sorted(set(recorded) ^ set(found)):
        return f"files missing or unexpected: {', '.join(changed)}"
    if changed := sorted(name for name in recorded if recorded[name] != found[name]):
        return f"checksum mismatch: {', '.join(changed)}"
    return None


def ensure_converted(
    name: str, key: AssetKey, build: Callable[[Path], None], cache_root: Path
) -> Path:
    """The folder of asset `name`, built by `build(folder)` the first time (or when damaged)."""
    final = cache_root / key.folder_name(name)
    with file_lock(final.with_name(f".{final.name}.lock")):
        if final.is_dir():
            problem = damage(final)
            if problem is None:
                return final
            logger.warning("cached asset %s is damaged (%s): converting it again", final, problem)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-building-", dir=cache_root))
        try:
            build(staging)
            record = {
                "name": name,
                "packages": dict(key.packages),
                "licence": key.licence,
                "format_version": key.format_version,
                "sources": {label: sha256_file(path) for label, path in key.sources},
                "outputs": _output_sums(staging),
            }
            (staging / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n", "utf-8")
            shutil.rmtree(final, ignore_errors=True)
            staging.rename(final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return final
