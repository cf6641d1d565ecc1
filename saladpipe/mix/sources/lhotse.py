"""Lhotse sources: a CutSet manifest whose recordings are audio files, and a Shar folder.

Both list their cuts as JSON lines, which is all `scan` reads: a cut's text is its
supervisions' texts in time order, its duration the cut's, its voice and group the
speaker and language of its first supervision. Audio is loaded through Lhotse itself,
so its semantics (a cut's offset into its recording, its channels, the audio formats
Shar stores) hold here as they do in training.

Lhotse is imported where it is used: it pulls in torch, and the reader registry
imports every reader.
"""

from __future__ import annotations

import functools
import json
import tarfile
from abc import abstractmethod
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from saladpipe.data_schemas.errors import ConfigError
from saladpipe.mix.sources.base import (
    NO_TEXT,
    Candidates,
    SourceReader,
    empty_rows,
    split_locator,
)

NO_RECORDING = "no_recording"
# A locator's key cannot hold '#', and one cut id must name one cut within its file.
ID_WITH_HASH = "cut_id_with_hash"
REPEATED_CUT_ID = "repeated_cut_id"


def _mono(audio: np.ndarray) -> np.ndarray:
    """Lhotse's (channels, samples) audio as one channel."""
    return audio.mean(axis=0, dtype=np.float32)


def _unusable(cut: Any, text: str, seen: set[str]) -> str | None:
    """Why the cut cannot be offered (`seen`: the ids its file offered before), or None."""
    if not cut.has_recording:
        return NO_RECORDING
    if not text:
        return NO_TEXT
    if "#" in cut.id:
        return ID_WITH_HASH
    return REPEATED_CUT_ID if cut.id in seen else None


class _CutsReader(SourceReader):
    """Cuts to candidate rows, for any source whose cuts lie in JSON lines files.

    A subclass says which cuts files the source has and which file each one's locators
    name (the file `load` reads the audio from), and loads a cut's audio.
    """

    @abstractmethod
    def _cut_files(self) -> Iterator[tuple[Path, Path]]:
        """Each cuts file of the source, with the file its cuts' locators name."""

    def scan(self) -> Candidates:
        from lhotse import CutSet

        rows, skipped = empty_rows(), Counter[str]()
        for cuts, audio_file in self._cut_files():
            seen: set[str] = set()
            for cut in CutSet.from_jsonl_lazy(cuts):
                if not hasattr(cut, "supervisions"):  # a recordings or supervisions manifest
                    raise ConfigError(
                        f"config error: source {self.source.name}: {cuts} holds a "
                        f"{type(cut).__name__} where cuts are expected"
                    )
                supervisions = sorted(cut.supervisions, key=lambda s: s.start)
                text = " ".join(s.text.strip() for s in supervisions if s.text and s.text.strip())
                reason = _unusable(cut, text, seen)
                if reason is not None:
                    skipped[reason] += 1
                    continue
                seen.add(cut.id)
                rows["item_id"].append(cut.id)
                rows["locator"].append(f"{audio_file}#{cut.id}")
                rows["text"].append(text)
                rows["duration_s"].append(float(cut.duration))
                rows["group"].append(supervisions[0].language)
                rows["voice"].append(supervisions[0].speaker)
        return Candidates.from_rows(rows, skipped)


@functools.lru_cache(maxsize=8)
def _cuts_by_id(manifest: Path) -> dict[str, Any]:
    """The manifest's cuts by id, the first of a repeated id as `scan` offers it (once per
    manifest and process)."""
    from lhotse import CutSet

    cuts: dict[str, Any] = {}
    for cut in CutSet.from_jsonl_lazy(manifest):
        cuts.setdefault(cut.id, cut)
    return cuts


def _audio_files(cut: Any) -> Iterator[Path]:
    """The files a cut's audio is read from (every track's, for a mixed cut; its padding
    has no recording)."""
    tracks = [track.cut for track in cut.tracks] if hasattr(cut, "tracks") else [cut]
    for one in tracks:
        if getattr(one, "recording", None) is not None:
            yield from (Path(s.source) for s in one.recording.sources if s.type == "file")


class LhotseManifestReader(_CutsReader):
    """A CutSet manifest (`*.jsonl.gz` or `*.jsonl`); locators are `manifest#cut_id`.

    Relative audio paths are Lhotse's: they resolve against the working directory.
    """

    kind = "lhotse_manifest"

    def _cut_files(self) -> Iterator[tuple[Path, Path]]:
        return ((manifest, manifest) for manifest in self.paths)

    def load(self, locator: str) -> tuple[np.ndarray, int]:
        manifest, cut_id = split_locator(locator)
        cut = _cuts_by_id(Path(manifest)).get(cut_id)
        if cut is None:
            raise FileNotFoundError(f"{manifest} has no cut {cut_id}")
        # Lhotse reports a missing file as any other loading failure; it is told apart here.
        for path in _audio_files(cut):
            if not path.is_file():
                raise FileNotFoundError(path)
        return _mono(cut.load_audio()), int(cut.sampling_rate)


@functools.lru_cache(maxsize=64)
def _tar_members(
    tar: Path, version: tuple[int, int]
) -> dict[str, tuple[tarfile.TarInfo, tarfile.TarInfo]]:
    """Each cut's (audio, recording manifest) members in a Shar tar, by cut id.

    The Shar writer puts a cut's audio (`<id>.<format>`) right before its manifest
    (`<id>.json`; `.nodata`/`.nometa` for a cut without audio). Only the headers are
    read, once per process and tar `version` (its modification time and size); a load
    then seeks straight to its members.
    """
    with tarfile.open(tar) as archive:
        members = archive.getmembers()
    pairs: dict[str, tuple[tarfile.TarInfo, tarfile.TarInfo]] = {}
    for data, meta in zip(members[::2], members[1::2], strict=False):
        if meta.name.endswith(".json"):
            pairs.setdefault(meta.name.removesuffix(".json"), (data, meta))
    return pairs


def _member_bytes(fh: IO[bytes], member: tarfile.TarInfo) -> bytes:
    fh.seek(member.offset_data)
    return fh.read(member.size)


class LhotseSharReader(_CutsReader):
    """Shar folders (`cuts.N.jsonl.gz` and `recording.N.tar`, as `CutSet.to_shar` writes
    them with a `recording` field); locators are `recording.N.tar#cut_id`."""

    kind = "lhotse_shar"

    def _cut_files(self) -> Iterator[tuple[Path, Path]]:
        for folder in self.paths:
            files = sorted(folder.glob("cuts*.jsonl.gz"))
            if not files:
                raise ConfigError(
                    f"config error: source {self.source.name}: no cuts*.jsonl.gz in {folder}"
                )
            for cuts in files:
                shard = cuts.name.removeprefix("cuts").removesuffix(".jsonl.gz")
                yield cuts, folder / f"recording{shard}.tar"

    def load(self, locator: str) -> tuple[np.ndarray, int]:
        from lhotse import Recording, fastcopy

        tar, cut_id = split_locator(locator)
        stat = Path(tar).stat()
        members = _tar_members(Path(tar), (stat.st_mtime_ns, stat.st_size)).get(cut_id)
        if members is None:
            raise FileNotFoundError(f"{tar} holds no audio of cut {cut_id}")
        with Path(tar).open("rb") as fh:
            data, meta = (_member_bytes(fh, member) for member in members)
        # The member's manifest with its bytes as the audio source, as Lhotse's Shar reader
        # fills it in.
        placeholder = Recording.from_dict(json.loads(meta))
        source = fastcopy(placeholder.sources[0], type="memory", source=data)
        recording = fastcopy(placeholder, sources=[source])
        return _mono(recording.load_audio()), int(recording.sampling_rate)
