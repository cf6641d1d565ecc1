"""Each mix source format read from real files that its own library wrote: every row's
text, duration and audio, and a missing or broken file as a reason, never a crash."""

from __future__ import annotations

import contextlib
import io
import tarfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from saladpipe.data_schemas.errors import ConfigError
from saladpipe.data_schemas.mix_config import MixSource
from saladpipe.mix.sources import READERS, reader_for
from saladpipe.mix.sources.base import (
    MISSING_AUDIO,
    NO_TEXT,
    UNDECODABLE_AUDIO,
    Candidates,
    SourceReader,
)
from saladpipe.mix.sources.hf import HFDatasetReader, HFParquetReader
from saladpipe.mix.sources.lhotse import LhotseManifestReader, LhotseSharReader

RATE = 16000
GARBAGE = b"this is not audio " * 40


def tone(index: int) -> np.ndarray:
    """Row `index`'s audio: a pitch and a length of its own (0.3 s, then 0.1 s longer each)."""
    t = np.arange(4800 + 1600 * index) / RATE
    return (0.3 * np.sin(2 * np.pi * (220 + 110 * index) * t)).astype(np.float32)


def write_tone(path: Path, index: int) -> Path:
    """The tone as 16-bit FLAC or WAV, by the path's extension."""
    sf.write(path, tone(index), RATE)
    return path


def open_source(kind: str, path: Path, **options: str) -> SourceReader:
    return reader_for(
        MixSource.model_validate({"name": "src", "kind": kind, "path": path, **options})
    )


def check_offers(reader: SourceReader, expected: dict[str, np.ndarray]) -> Candidates:
    """The reader offers exactly the expected texts, each as long as its audio, and loads
    that audio back (within 16-bit quantisation)."""
    candidates = reader.scan()
    rows = candidates.table.to_pylist()
    assert sorted(row["text"] for row in rows) == sorted(expected)
    for row in rows:
        audio = expected[row["text"]]
        assert row["duration_s"] == pytest.approx(audio.size / RATE, abs=1e-3)
        samples, rate = reader.load(row["locator"])
        assert (rate, samples.dtype) == (RATE, np.float32)
        np.testing.assert_allclose(samples, audio, atol=1e-3)
        assert reader.problem(row["locator"]) is None
    return candidates


def locators(candidates: Candidates) -> dict[str, str]:
    return {row["text"]: row["locator"] for row in candidates.table.to_pylist()}


def test_every_format_has_its_reader() -> None:
    assert READERS["hf_parquet"] is HFParquetReader
    assert READERS["hf_dataset"] is HFDatasetReader
    assert READERS["lhotse_manifest"] is LhotseManifestReader
    assert READERS["lhotse_shar"] is LhotseSharReader


# Hugging Face ---------------------------------------------------------------------------


def hf_dataset(audio: list[Any], texts: list[str | None], **columns: list[Any]) -> Any:
    """A `datasets.Dataset` with an Audio column of files or {bytes, path} structs."""
    import datasets

    table = {"audio": audio, "text": texts, **columns}
    return datasets.Dataset.from_dict(table).cast_column("audio", datasets.Audio())


def hf_parquet_folder(tmp: Path) -> Path:
    """Two Parquet files as `datasets` writes them: tone 0 with its FLAC bytes inside, tones
    1 to 3 naming their files (absolute, and relative to the folder), then a row without
    text and a blank one."""
    folder = tmp / "parquet"
    folder.mkdir()
    names = [
        str(write_tone(folder / "t1.flac", 1)),
        write_tone(folder / "t2.wav", 2).name,
        str(write_tone(folder / "t3.flac", 3)),
        str(folder / "t1.flac"),
        str(folder / "t1.flac"),
    ]
    embedded = {"bytes": write_tone(tmp / "t0.flac", 0).read_bytes(), "path": "t0.flac"}
    audio = [embedded, *({"bytes": None, "path": name} for name in names)]
    texts = ["tone 0", "tone 1", "tone 2", "tone 3", None, "  "]
    speakers = [10, 11, 12, 13, 14, 15]
    dataset = hf_dataset(audio, texts, speaker_id=speakers, language=["en"] * 6)
    with contextlib.chdir(folder):  # where `datasets` finds the relative path
        for part in range(2):
            shard = dataset.shard(num_shards=2, index=part, contiguous=True)
            shard.to_parquet(folder / f"part-{part}.parquet")
    return folder


def test_hf_parquet_offers_every_row_with_its_audio(tmp_path: Path) -> None:
    reader = open_source("hf_parquet", hf_parquet_folder(tmp_path))
    candidates = check_offers(reader, {f"tone {i}": tone(i) for i in range(4)})
    assert candidates.skipped == Counter({NO_TEXT: 2})
    rows = candidates.table.to_pylist()
    assert [row["voice"] for row in rows] == ["10", "11", "12", "13"]
    assert {row["group"] for row in rows} == {"en"}
    assert rows[3]["locator"] == f"{tmp_path / 'parquet' / 'part-1.parquet'}#0"


def test_hf_parquet_missing_or_broken_audio_is_a_reason(tmp_path: Path) -> None:
    folder = hf_parquet_folder(tmp_path)
    reader = open_source("hf_parquet", folder)
    where = locators(reader.scan())
    (folder / "t1.flac").unlink()
    (folder / "t2.wav").write_bytes(GARBAGE)
    assert reader.problem(where["tone 1"]) == MISSING_AUDIO
    assert reader.problem(where["tone 2"]) == UNDECODABLE_AUDIO
    assert reader.problem(f"{folder / 'part-0.parquet'}#99") == MISSING_AUDIO
    assert reader.problem(f"{folder / 'gone.parquet'}#0") == MISSING_AUDIO
    # Without a duration column the scan reads each header, and counts what it cannot.
    assert reader.scan().skipped == Counter({NO_TEXT: 2, MISSING_AUDIO: 1, UNDECODABLE_AUDIO: 1})


def test_hf_parquet_duration_column_spares_the_header(tmp_path: Path) -> None:
    path = tmp_path / "clips.parquet"
    audio = [{"bytes": GARBAGE, "path": None}, {"bytes": None, "path": str(tmp_path / "t1.wav")}]
    write_tone(tmp_path / "t1.wav", 1)
    hf_dataset(audio, ["broken", "tone 1"], duration=[1.25, None]).to_parquet(path)
    reader = open_source("hf_parquet", path)
    broken, timed_by_header = reader.scan().table.to_pylist()
    assert broken["duration_s"] == 1.25
    assert reader.problem(broken["locator"]) == UNDECODABLE_AUDIO
    assert timed_by_header["duration_s"] == pytest.approx(tone(1).size / RATE, abs=1e-3)


def test_hf_missing_text_column_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no column transcript"):
        open_source("hf_parquet", hf_parquet_folder(tmp_path), text_field="transcript").scan()


def test_hf_dataset_offers_every_row_with_its_embedded_audio(tmp_path: Path) -> None:
    files = [str(write_tone(tmp_path / f"t{i}.flac", i)) for i in range(3)]
    audio: list[dict[str, Any]] = [{"bytes": None, "path": p} for p in [*files, files[0]]]
    audio.append({"bytes": GARBAGE, "path": "broken.flac"})
    texts = ["tone 0", "tone 1", "tone 2", None, "broken"]
    folder = tmp_path / "saved"
    hf_dataset(audio, texts, id=["a", "b", "c", "d", "e"]).save_to_disk(folder)
    for path in files:  # save_to_disk embedded the audio
        Path(path).unlink()
    reader = open_source("hf_dataset", folder)
    candidates = check_offers(reader, {f"tone {i}": tone(i) for i in range(3)})
    assert candidates.skipped == Counter({NO_TEXT: 1, UNDECODABLE_AUDIO: 1})
    assert candidates.table.column("item_id").to_pylist() == ["a", "b", "c"]
    assert locators(candidates)["tone 1"] == f"{folder}#1"
    assert reader.problem(f"{folder}#4") == UNDECODABLE_AUDIO
    assert reader.problem(f"{folder}#99") == MISSING_AUDIO
    assert reader.problem(f"{tmp_path / 'gone'}#0") == MISSING_AUDIO


def test_hf_dataset_dict_names_its_splits(tmp_path: Path) -> None:
    import datasets

    split = hf_dataset([str(write_tone(tmp_path / "t0.flac", 0))], ["tone 0"])
    datasets.DatasetDict({"train": split, "test": split}).save_to_disk(tmp_path / "dict")
    with pytest.raises(ConfigError, match=r"dict/train") as error:
        open_source("hf_dataset", tmp_path / "dict").scan()
    assert "dict/test" in str(error.value)


# Lhotse ---------------------------------------------------------------------------------


def supervised(cut: Any, *texts: tuple[str, float]) -> Any:
    """The cut with one supervision per (text, start), listed latest first."""
    from lhotse import SupervisionSegment, fastcopy

    supervisions = [
        SupervisionSegment(
            id=f"{cut.id}-{start}",
            recording_id=cut.recording_id,
            start=start,
            duration=0.1,
            text=text,
            speaker=f"spk-{cut.recording_id}",
            language="en",
        )
        for text, start in reversed(texts)
    ]
    return fastcopy(cut, supervisions=supervisions)


def lhotse_cuts(tmp: Path) -> tuple[list[Any], dict[str, np.ndarray]]:
    """Cuts of tone recordings (FLAC and WAV files), and the audio each should load: whole
    recordings (tone 0's text in two supervisions), a stretch of a recording (an offset
    into it) and a cut without text."""
    from lhotse import Recording

    recordings = [
        Recording.from_file(write_tone(tmp / f"t{i}.{'wav' if i % 2 else 'flac'}", i))
        for i in range(3)
    ]
    stretch = recordings[2].to_cut().truncate(offset=0.1, duration=0.2).with_id("t2-part")
    cuts = [
        supervised(recordings[0].to_cut(), ("tone", 0.0), ("0", 0.1)),
        supervised(recordings[1].to_cut(), ("tone 1", 0.0)),
        supervised(recordings[2].to_cut(), ("tone 2", 0.0)),
        supervised(stretch, ("part of tone 2", 0.0)),
        recordings[1].to_cut().with_id("silent"),
    ]
    expected = {f"tone {i}": tone(i) for i in range(3)}
    return cuts, {**expected, "part of tone 2": tone(2)[1600:4800]}


def test_lhotse_manifest_offers_every_cut_and_loads_it_as_lhotse_does(tmp_path: Path) -> None:
    from lhotse import CutSet

    cuts, expected = lhotse_cuts(tmp_path)
    # A mixed cut: the recording, then silence.
    padded = supervised(cuts[1].with_id("t1-padded"), ("tone 1 padded", 0.0)).pad(duration=1.0)
    expected["tone 1 padded"] = np.concatenate([tone(1), np.zeros(RATE - tone(1).size)])
    manifest = tmp_path / "cuts.jsonl.gz"
    CutSet.from_cuts([*cuts, padded]).to_file(manifest)
    reader = open_source("lhotse_manifest", manifest)
    candidates = check_offers(reader, expected)
    assert candidates.skipped == Counter({NO_TEXT: 1})
    first = candidates.table.to_pylist()[0]
    assert (first["voice"], first["group"], first["engine"]) == ("spk-t0", "en", None)

    where = locators(candidates)
    (tmp_path / "t1.wav").unlink()
    (tmp_path / "t0.flac").write_bytes(GARBAGE)
    assert reader.problem(where["tone 1"]) == MISSING_AUDIO
    assert reader.problem(where["tone 1 padded"]) == MISSING_AUDIO
    assert reader.problem(where["tone 0"]) == UNDECODABLE_AUDIO
    assert reader.problem(f"{manifest}#no-such-cut") == MISSING_AUDIO


def test_lhotse_manifest_of_recordings_is_a_config_error(tmp_path: Path) -> None:
    from lhotse import Recording, RecordingSet

    recording = Recording.from_file(write_tone(tmp_path / "t0.flac", 0))
    RecordingSet.from_recordings([recording]).to_file(tmp_path / "recordings.jsonl.gz")
    with pytest.raises(ConfigError, match="holds a Recording where cuts are expected"):
        open_source("lhotse_manifest", tmp_path / "recordings.jsonl.gz").scan()


def rewrite_member(tar: Path, name: str, data: bytes) -> None:
    """Replace one member's bytes, every member kept in its place."""
    with tarfile.open(tar) as old:
        members = [(member, old.extractfile(member)) for member in old.getmembers()]
        payloads = [(member, fh.read() if fh else b"") for member, fh in members]
    with tarfile.open(tar, "w") as new:
        for member, payload in payloads:
            payload = data if member.name == name else payload
            member.size = len(payload)
            new.addfile(member, io.BytesIO(payload))


@pytest.mark.parametrize("audio_format", ["flac", "wav"])
def test_lhotse_shar_offers_every_cut_and_reads_one_member(
    tmp_path: Path, audio_format: str
) -> None:
    from lhotse import CutSet

    cuts, expected = lhotse_cuts(tmp_path)
    folder = tmp_path / "shar"
    folder.mkdir()
    CutSet.from_cuts(cuts).to_shar(folder, fields={"recording": audio_format}, shard_size=2)
    reader = open_source("lhotse_shar", folder)
    candidates = check_offers(reader, expected)
    assert candidates.skipped == Counter({NO_TEXT: 1})
    where = locators(candidates)
    assert where["part of tone 2"] == f"{folder / 'recording.000001.tar'}#t2-part"

    first, second = folder / "recording.000000.tar", folder / "recording.000001.tar"
    tone_0 = where["tone 0"].rpartition("#")[2]
    rewrite_member(first, f"{tone_0}.{audio_format}", GARBAGE)
    second.unlink()
    assert reader.problem(where["tone 0"]) == UNDECODABLE_AUDIO
    assert reader.problem(where["tone 2"]) == MISSING_AUDIO
    assert reader.problem(f"{first}#no-such-cut") == MISSING_AUDIO


def test_lhotse_shar_folder_without_cuts_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no cuts\*\.jsonl\.gz"):
        open_source("lhotse_shar", tmp_path).scan()
