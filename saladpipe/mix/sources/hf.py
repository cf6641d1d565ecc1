"""Hugging Face audio sources: Parquet files in its audio format, and `save_to_disk` folders.

Both hold an Audio column (`audio_field`) stored as a struct of `bytes` (the encoded
file) and `path` (the only way to the audio when bytes is null; relative to the folder
the data lies in), and a text column (`text_field`). Neither records how long a clip
is, so a `duration_s`/`duration` column is used where there is one and the audio header
read otherwise (never the samples). Speaker and language-like columns, where the data
set has them under a usual name, become the row's voice and group.

`datasets` is imported where it is used: the reader registry imports every reader and
most mixes have no `hf_dataset` source.
"""

from __future__ import annotations

import functools
import io
from abc import abstractmethod
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import soundfile as sf

from saladpipe.data_schemas.errors import ConfigError
from saladpipe.mix.sources.base import (
    MISSING_AUDIO,
    NO_TEXT,
    UNDECODABLE_AUDIO,
    Candidates,
    SourceReader,
    empty_rows,
    split_locator,
)
from saladpipe.mix.sources.parquet_rows import row_value

# Optional columns, by the names Hugging Face audio data sets usually give them; the
# first one present is used.
_DURATION_COLUMNS = ("duration_s", "duration")
_VOICE_COLUMNS = ("speaker_id", "speaker", "client_id")
_GROUP_COLUMNS = ("domain", "language", "locale", "lang")
_ID_COLUMN = "id"
_BATCH_ROWS = 1024


def _first(names: Sequence[str], present: Sequence[str]) -> str | None:
    return next((name for name in names if name in present), None)


def _label(value: object) -> str | None:
    """A value of an id, speaker or language column as text (they may be numbers)."""
    return None if value is None else str(value)


def _encoded(audio: dict[str, Any] | None, folder: Path) -> io.BytesIO | Path:
    """The row's encoded audio: its bytes, else the file its path names."""
    if audio is not None and audio.get("bytes") is not None:
        return io.BytesIO(audio["bytes"])
    if audio is None or not audio.get("path"):
        raise FileNotFoundError("the row holds neither audio bytes nor a path")
    path = Path(audio["path"])
    path = path if path.is_absolute() else folder / path
    if not path.is_file():
        raise FileNotFoundError(path)
    return path


def _folder(part: Path) -> Path:
    """Where a row's relative audio path starts: the dataset folder, or the Parquet file's."""
    return part if part.is_dir() else part.parent


class _HFReader(SourceReader):
    """Rows to candidates and an audio struct to samples, for any store of HF audio rows.

    A subclass says which parts (files or folders) the source has, their columns, their
    rows in order, and how to fetch one row's audio struct again by its index.
    """

    @abstractmethod
    def _parts(self) -> Iterator[Path]:
        """The files or folders of the source, in order; each is a locator's file."""

    @abstractmethod
    def _columns(self, part: Path) -> list[str]:
        """The part's column names."""

    @abstractmethod
    def _batches(self, part: Path, columns: list[str]) -> Iterator[pa.Table | pa.RecordBatch]:
        """The part's rows in order, in batches holding only `columns`."""

    @abstractmethod
    def _audio(self, part: Path, row: int) -> dict[str, Any] | None:
        """Row `row`'s audio struct (FileNotFoundError if the part has no such row)."""

    def scan(self) -> Candidates:
        rows, skipped = empty_rows(), Counter[str]()
        text_field, audio_field = self.source.text_field, self.source.audio_field
        for part in self._parts():
            present = self._columns(part)
            absent = [name for name in (text_field, audio_field) if name not in present]
            if absent:
                raise ConfigError(
                    f"config error: source {self.source.name}: {part} has no column "
                    f"{', '.join(absent)} (its columns: {', '.join(present)})"
                )
            duration = _first(_DURATION_COLUMNS, present)
            voice, group = _first(_VOICE_COLUMNS, present), _first(_GROUP_COLUMNS, present)
            # The audio column is read with the rest only when no column gives durations.
            wanted = [text_field, duration or audio_field, voice, group, _ID_COLUMN]
            columns = [name for name in dict.fromkeys(wanted) if name and name in present]
            folder = _folder(part)
            for index, row in enumerate(self._rows(part, columns)):
                text = str(row[text_field] or "").strip()
                if not text:
                    skipped[NO_TEXT] += 1
                    continue
                seconds = row[duration] if duration else None
                if seconds is None:
                    # Read only here when the duration column left this row out.
                    audio = row[audio_field] if audio_field in row else self._audio(part, index)
                    try:
                        seconds = sf.info(_encoded(audio, folder)).duration
                    except FileNotFoundError:
                        skipped[MISSING_AUDIO] += 1
                        continue
                    except sf.SoundFileError:
                        skipped[UNDECODABLE_AUDIO] += 1
                        continue
                locator = f"{part}#{index}"
                rows["item_id"].append(_label(row.get(_ID_COLUMN)) or locator)
                rows["locator"].append(locator)
                rows["text"].append(text)
                rows["duration_s"].append(float(seconds))
                rows["group"].append(_label(row[group]) if group else None)
                rows["voice"].append(_label(row[voice]) if voice else None)
        return Candidates.from_rows(rows, skipped)

    def _rows(self, part: Path, columns: list[str]) -> Iterator[dict[str, Any]]:
        for batch in self._batches(part, columns):
            yield from batch.to_pylist()

    def load(self, locator: str) -> tuple[np.ndarray, int]:
        part, row = split_locator(locator)
        audio = self._audio(Path(part), int(row))
        samples, rate = sf.read(
            _encoded(audio, _folder(Path(part))), dtype="float32", always_2d=True
        )
        return samples.mean(axis=1, dtype=np.float32), int(rate)


class HFParquetReader(_HFReader):
    """Parquet files, or folders of them, as `datasets` writes them (`to_parquet`, the Hub)."""

    kind = "hf_parquet"

    def _parts(self) -> Iterator[Path]:
        for path in self.paths:
            files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
            if not files:
                raise ConfigError(
                    f"config error: source {self.source.name}: no *.parquet in {path}"
                )
            yield from files

    def _columns(self, part: Path) -> list[str]:
        return pq.read_schema(part).names

    def _batches(self, part: Path, columns: list[str]) -> Iterator[pa.RecordBatch]:
        return pq.ParquetFile(part).iter_batches(batch_size=_BATCH_ROWS, columns=columns)

    def _audio(self, part: Path, row: int) -> dict[str, Any] | None:
        return row_value(part, row, self.source.audio_field)


@functools.lru_cache(maxsize=16)
def _dataset(folder: Path, audio_field: str) -> Any:
    """The saved dataset, its audio column cast to undecoded bytes/path (once per folder
    and process: every later load of a row reuses the memory-mapped table)."""
    import datasets

    loaded = datasets.load_from_disk(str(folder))
    if isinstance(loaded, datasets.DatasetDict):
        raise ConfigError(
            f"config error: {folder} holds a DatasetDict; give its splits as the source's "
            f"paths: {', '.join(str(folder / split) for split in loaded)}"
        )
    if audio_field in loaded.column_names:
        loaded = loaded.cast_column(audio_field, datasets.Audio(decode=False))
    return loaded


class HFDatasetReader(_HFReader):
    """Folders written by `datasets.Dataset.save_to_disk` (one split each)."""

    kind = "hf_dataset"

    def _parts(self) -> Iterator[Path]:
        return iter(self.paths)

    def _columns(self, part: Path) -> list[str]:
        return _dataset(part, self.source.audio_field).column_names

    def _batches(self, part: Path, columns: list[str]) -> Iterator[pa.Table]:
        dataset = _dataset(part, self.source.audio_field).select_columns(columns)
        return dataset.with_format("arrow").iter(batch_size=_BATCH_ROWS)

    def _audio(self, part: Path, row: int) -> dict[str, Any] | None:
        dataset = _dataset(part, self.source.audio_field)
        if not 0 <= row < len(dataset):
            raise FileNotFoundError(f"{part} has no row {row}")
        return dataset[row][self.source.audio_field]
