"""eSpeak NG: formant synthesis with Debian's `espeak-ng` program; no weights at all.

Robotic, but fast (docs/benchmarks.md), in over a hundred languages, and with
variants (m1-m8, f1-f5, whisper, croak, ...) as extra speakers. It samples nothing:
the same text gives the same samples, so the seed goes unused.
"""

from __future__ import annotations

import functools
import struct
import subprocess

import numpy as np

from saladpipe.data_schemas.config import VoiceSpec
from saladpipe.data_schemas.errors import ConfigError
from saladpipe.tts.base import EngineOptions, TTSEngine, VoiceInfo
from saladpipe.tts.espeak_ng import espeak_program


@functools.cache
def _listing(kind: str) -> tuple[tuple[str, str, str], ...]:
    """`espeak-ng --voices[=variant]` as (language, voice name, file) rows."""
    args = [espeak_program(), "--voices" if kind == "voices" else "--voices=variant"]
    lines = subprocess.run(args, capture_output=True, text=True, check=True).stdout.splitlines()
    return tuple(
        (fields[1], fields[3], fields[4].rsplit("/", 1)[-1])
        for fields in (line.split() for line in lines[1:])
        if len(fields) >= 5
    )


def _voices() -> dict[str, str]:
    """Every name `-v` accepts (language code, voice name, file name) -> language code."""
    names: dict[str, str] = {}
    for language, voice_name, file in _listing("voices"):
        for name in (language, voice_name, file):
            names.setdefault(name, language)
    return names


def _variants() -> list[str]:
    """Variant files, the names that follow `+` in a voice (m1, f3, whisper, ...)."""
    return sorted({file for _, _, file in _listing("variants")})


def _read_wav(data: bytes) -> tuple[np.ndarray, int]:
    """Parse the streamed WAV espeak-ng writes (its header sizes are placeholders)."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise RuntimeError("espeak-ng did not write WAV audio")
    rate = struct.unpack_from("<I", data, 24)[0]
    start = data.find(b"data", 12) + 8
    pcm = np.frombuffer(data[start : start + (len(data) - start) // 2 * 2], dtype="<i2")
    return (pcm.astype(np.float32) / 32768.0), int(rate)


class EspeakEngine(TTSEngine):
    """One eSpeak NG voice (and variant); each call runs the program once."""

    name = "espeak"
    # eSpeak NG and its voice data are GPL-3.0-or-later; the audio it makes is not restricted.
    default_license = "GPL-3.0-or-later"
    default_voice = "en-us"
    max_chars = 2000
    deterministic = True

    def __init__(self, spec: VoiceSpec, options: EngineOptions) -> None:
        super().__init__(spec, options)
        voice = spec.voice or self.default_voice or ""
        self._args = [
            espeak_program(),
            "-v",
            voice if spec.speaker is None else f"{voice}+{spec.speaker}",
            "--stdout",
            "--stdin",
            "-b",
            "1",
        ]
        self._rate = _read_wav(self._run("a"))[1]

    @classmethod
    def describe(cls, spec: VoiceSpec, device: str = "cpu") -> VoiceInfo:
        voice = spec.voice or cls.default_voice or ""
        voices = _voices()
        if voice not in voices:
            raise ConfigError(
                f"config error: tts.voices: eSpeak NG has no voice {voice!r} "
                "(see `espeak-ng --voices`)"
            )
        if spec.speaker is not None and spec.speaker not in _variants():
            raise ConfigError(
                f"config error: tts.voices: eSpeak NG has no variant {spec.speaker!r} "
                "(see `espeak-ng --voices=variant`)"
            )
        return VoiceInfo(
            name=voice if spec.speaker is None else f"{voice}+{spec.speaker}",
            language=voices[voice],
            license=cls.voice_license(spec),
            deterministic=cls.deterministic,
        )

    @classmethod
    def list_voices(cls) -> list[str]:
        return sorted({language for language, _, _ in _listing("voices")})

    @property
    def sample_rate(self) -> int:
        return self._rate

    def speakers(self) -> list[str]:
        return _variants()

    def _run(self, text: str) -> bytes:
        done = subprocess.run(self._args, input=text.encode("utf-8"), capture_output=True)
        if done.returncode != 0 or not done.stdout:
            message = done.stderr.decode("utf-8", "replace").strip() or f"exit {done.returncode}"
            raise RuntimeError(f"espeak-ng failed: {message}")
        return done.stdout

    def synthesize(self, text: str, seed: int) -> np.ndarray:
        return _read_wav(self._run(text))[0]
