"""Debian's `espeak-ng` program, shared by the engines that use it: the eSpeak engine
speaks with it, Kokoro's front end turns text into IPA phonemes with it."""

from __future__ import annotations

import shutil
import subprocess

from saladpipe.data_schemas.errors import ConfigError


def espeak_program() -> str:
    """Path of the espeak-ng program; scripts/setup.sh installs Debian's package."""
    program = shutil.which("espeak-ng")
    if program is None:
        raise ConfigError(
            "config error: tts.engine: the espeak and kokoro engines need the espeak-ng program "
            "(apt-get install espeak-ng)"
        )
    return program


def ipa(text: str, language: str) -> str:
    """The text in IPA as eSpeak NG speaks it in `language`, each clause break as a comma."""
    done = subprocess.run(
        [espeak_program(), "-q", "--ipa", "-v", language],
        input=text.encode("utf-8"),
        capture_output=True,
        check=True,
    )
    lines = done.stdout.decode("utf-8").split("\n")
    return ", ".join(line.strip() for line in lines if line.strip())
