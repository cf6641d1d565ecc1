"""What every mix source reader does: offer candidate rows, and load one row's audio.

A reader is built once per source (and once per dataloader worker); `scan` lists
what the source offers without decoding audio, `load` decodes one row's audio from
its locator. The mix draws rows and calls `problem` on each speech row it takes, so a
missing or undecodable file becomes a reason in the mix report, never a crash, and
only drawn rows pay for the check.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import pyarrow as pa

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.mix_config import MixSource

# Why a drawn speech row is left out.
MISSING_AUDIO = "missing_audio"
UNDECODABLE_AUDIO = "undecodable_audio"
EMPTY_AUDIO = "empty_audio"
# Why a row is not offered: it has nothing to say.
NO_TEXT = "no_text"


@dataclass
class Candidates:
    """The rows a source offers (MIX_CANDIDATES) and the rows it could not offer, by reason."""

    table: pa.Table
    skipped: Counter[str] = field(default_factory=Counter)

    @classmethod
    def from_rows(
        cls, rows: dict[str, list[object]], skipped: Counter[str] | None = None
    ) -> Candidates:
        """From column lists; the optional report columns may be left out."""
        length = len(rows["item_id"])
        full = {name: rows.get(name) or [None] * length for name in tables.MIX_CANDIDATES.names}
        return cls(pa.table(full, schema=tables.MIX_CANDIDATES), skipped or Counter())


def empty_rows() -> dict[str, list[object]]:
    """Column lists to fill with one value per candidate row."""
    return {name: [] for name in tables.MIX_CANDIDATES.names}


class SourceReader(ABC):
    """Reads one kind of source. Subclasses set `kind` and implement `scan` (and `load`
    for speech); registering a new one is one line in `saladpipe/mix/sources/__init__.py`."""

    kind: ClassVar[str]

    def __init__(self, source: MixSource) -> None:
        self.source = source

    @property
    def paths(self) -> tuple[Path, ...]:
        return self.source.path

    @abstractmethod
    def scan(self) -> Candidates:
        """Every row the source offers; rows unusable on their face are counted by reason."""

    def load(self, locator: str) -> tuple[np.ndarray, int]:
        """The row's audio as mono float32 samples and their rate (speech sources only)."""
        raise TypeError(f"source {self.source.name} ({self.kind}) holds no audio")

    def problem(self, locator: str) -> str | None:
        """Why the row's audio cannot be used, or None: the file must exist and decode."""
        try:
            samples, _ = self.load(locator)
        except FileNotFoundError:
            return MISSING_AUDIO
        except Exception:  # any decoder failure is the file's fault: a reason, not a crash
            return UNDECODABLE_AUDIO
        return EMPTY_AUDIO if samples.size == 0 else None


def split_locator(locator: str) -> tuple[str, str]:
    """`file#key` into the file and the key within it (the key may not hold '#')."""
    path, _, key = locator.rpartition("#")
    return path, key
