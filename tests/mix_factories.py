"""Helpers that make real mix sources and configs for tests: tone clips on disk, NeMo
manifests pointing at them, text-only files, and mix TOMLs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

RATE = 16000


def tone(index: int, seconds: float = 1.0, rate: int = RATE) -> np.ndarray:
    """A clip that tells rows apart: a sine at 200 + 20 * index Hz, float32."""
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * (200 + 20 * index) * t)).astype(np.float32)


def write_tone_nemo(
    folder: Path, n: int, seconds: float = 1.0
) -> tuple[Path, dict[str, np.ndarray]]:
    """n WAV tones and a NeMo manifest (relative paths) of them; returns the manifest
    and each row's written samples by id."""
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, np.ndarray] = {}
    lines = []
    for i in range(n):
        samples = tone(i, seconds)
        sf.write(folder / f"n{i}.wav", samples, RATE, subtype="PCM_16")
        written[f"n{i}"] = samples
        entry = {"audio_filepath": f"n{i}.wav", "text": f"natural {i}", "duration": seconds}
        lines.append(json.dumps({**entry, "id": f"n{i}", "domain": f"d{i % 2}"}))
    manifest = folder / "manifest.jsonl"
    manifest.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return manifest, written


def write_text_lines(path: Path, n: int) -> Path:
    """n usable text lines and one empty line (which a text source skips as `empty`)."""
    path.write_text("".join(f"a text only line number {i}\n" for i in range(n)) + "\n")
    return path


def _value(value: Any) -> str:
    if isinstance(value, Path):
        return json.dumps(str(value))
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return json.dumps(value)


def write_mix_config(path: Path, mix: dict[str, Any], sources: Sequence[dict[str, Any]]) -> Path:
    """A mix TOML with a [mix] table and one [[sources]] table each."""
    text = "[mix]\n" + "".join(f"{k} = {_value(v)}\n" for k, v in mix.items())
    for source in sources:
        text += "[[sources]]\n" + "".join(f"{k} = {_value(v)}\n" for k, v in source.items())
    path.write_text(text, encoding="utf-8")
    return path
