"""NeMo manifests: JSON lines with audio_filepath, text and duration (and optional offset).

Relative audio paths resolve against the manifest's folder, as NeMo resolves them.
A line that is not a manifest entry is counted, not fatal.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import soundfile as sf

from saladpipe.mix.sources.base import Candidates, SourceReader, empty_rows, split_locator

NOT_A_MANIFEST_LINE = "not_a_manifest_line"


class NemoManifestReader(SourceReader):
    kind = "nemo_manifest"

    def scan(self) -> Candidates:
        rows, skipped = empty_rows(), Counter[str]()
        for manifest in self.paths:
            with manifest.open(encoding="utf-8") as fh:
                for line in fh:
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line)
                        audio = Path(record["audio_filepath"])
                        text, duration = str(record["text"]), float(record["duration"])
                        offset = float(record.get("offset", 0.0))
                    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                        skipped[NOT_A_MANIFEST_LINE] += 1
                        continue
                    path = audio if audio.is_absolute() else manifest.parent / audio
                    rows["item_id"].append(str(record.get("id", audio)))
                    rows["locator"].append(f"{path}#{offset}:{duration}" if offset else str(path))
                    rows["text"].append(text)
                    rows["duration_s"].append(duration)
                    rows["group"].append(record.get("domain") or record.get("lang"))
                    rows["voice"].append(record.get("speaker"))
        return Candidates.from_rows(rows, skipped)

    def load(self, locator: str) -> tuple[np.ndarray, int]:
        path, span = split_locator(locator) if "#" in locator else (locator, "")
        if not Path(path).is_file():
            raise FileNotFoundError(path)
        with sf.SoundFile(path) as audio:
            rate = audio.samplerate
            frames = -1
            if span:
                offset, duration = (float(v) for v in span.split(":"))
                audio.seek(int(offset * rate))
                frames = int(duration * rate)
            samples = audio.read(frames, dtype="float32", always_2d=True).mean(axis=1)
        return samples.astype(np.float32, copy=False), int(rate)
