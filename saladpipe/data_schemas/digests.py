"""Content digests of files, computed once per version of a file.

Resume keys and completion records name files by their content (sha256), not by
their modification time, so that a file rewritten with the same bytes (a task
redone after a kill, a corpus rebuilt in a fresh cache) does not invalidate what
was computed from it. Hashing is not free (about a second a GB), so each digest
is cached in the run's `state/digests/` and trusted while the file keeps the size
and modification time it had when it was hashed.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from saladpipe.data_schemas.io import write_text

# The digest a folder stands for: folders are compared by existence, not content.
FOLDER = "folder"


@dataclass(frozen=True)
class FileVersion:
    """One version of a file: where it is, its size and mtime when hashed, and its sha256."""

    path: str
    size: int
    mtime_ns: int
    sha256: str


class DigestCache:
    """sha256 of files, cached per (path, size, mtime) in one folder of small JSON records.

    Safe for several threads and processes: a record is written atomically, and two
    writers of the same record write the same content.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _entry(self, path: Path) -> Path:
        name = hashlib.blake2b(str(path).encode(), digest_size=16).hexdigest()
        return self.folder / f"{name}.json"

    def version(self, path: Path) -> FileVersion | None:
        """The file's current version (hashing it only if it changed since); None if absent."""
        path = path.absolute()
        if path.is_dir():  # a folder (a model cache) is kept as long as it exists
            return FileVersion(str(path), 0, 0, FOLDER)
        try:
            fh = path.open("rb")
        except FileNotFoundError:
            return None
        with fh:
            # The stamp and the bytes of one open file: a rename into place between a
            # stat and a read could otherwise pair one version's stamp with another's hash.
            stat = os.fstat(fh.fileno())
            entry = self._entry(path)
            cached = _read_entry(entry)
            if cached is not None and (cached.path, cached.size, cached.mtime_ns) == (
                str(path),
                stat.st_size,
                stat.st_mtime_ns,
            ):
                return cached
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
        current = FileVersion(str(path), stat.st_size, stat.st_mtime_ns, digest)
        write_text(json.dumps(asdict(current)), entry)
        return current

    def sha256(self, path: Path) -> str | None:
        """The file's sha256, or None when it does not exist."""
        version = self.version(path)
        return None if version is None else version.sha256


def _read_entry(entry: Path) -> FileVersion | None:
    try:
        return FileVersion(**json.loads(entry.read_text(encoding="utf-8")))
    except (FileNotFoundError, ValueError, TypeError):
        return None
