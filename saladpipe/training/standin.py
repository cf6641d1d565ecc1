"""A natural-speech stand-in a fresh clone can build offline: the stage-I speech.

The paper's stage II mixes natural speech with synthetic speech and text. No natural
speech can be downloaded here, so the default mix uses, in its place, the speech the
builtin student heard in stage I: the spoken prefixes of the heard domains' glosses
(Piper, the joe voice, 16 kHz FLAC), exposed as a NeMo manifest. They are synthetic
and read by one voice, so they stand in for the format and the plumbing, not for
the acoustics of natural speech.
"""

from __future__ import annotations

import json
from pathlib import Path

from saladpipe.data_schemas.errors import ConfigError
from saladpipe.data_schemas.io import write_text
from saladpipe.data_schemas.layout import cache_dir
from saladpipe.training.recipe import DEFAULT_RECIPE, BuildRecipe
from saladpipe.training.speech import SAMPLE_RATE, ClipCache, speech_settings, spoken_prefixes
from saladpipe.training.texts import build_texts

STAGE1_SPEECH = "builtin:stage1-speech"


def builtin_source_path(name: str, kind: str) -> Path:
    """The file a builtin mix source names, built (or found in the cache) now."""
    if name != STAGE1_SPEECH:
        raise ConfigError(f"config error: unknown builtin source {name!r}; known: {STAGE1_SPEECH}")
    if kind != "nemo_manifest":
        raise ConfigError(
            f'config error: {STAGE1_SPEECH} is a NeMo manifest; give it kind = "nemo_manifest"'
        )
    return stage1_speech_manifest(DEFAULT_RECIPE, cache_dir())


def stage1_speech_manifest(recipe: BuildRecipe, cache_root: Path) -> Path:
    """A NeMo manifest of the recipe's stage-I clips; clips missing from the cache are
    spoken first (a minute or two; none after `saladpipe run` built the models)."""
    manifest = cache_root / "standins" / f"stage1-speech-{recipe.key()}" / "manifest.jsonl"
    if manifest.is_file():
        return manifest
    glosses = build_texts(recipe).stage1
    with ClipCache(cache_root, speech_settings(recipe.voice)) as cache:
        spoken, _ = spoken_prefixes(glosses, cache, "stage-I speech")
        lines = [
            json.dumps(
                {
                    "audio_filepath": str(cache.clip_path(item.prefix)),
                    "text": item.prefix,
                    "duration": round(item.audio.size / SAMPLE_RATE, 4),
                    "id": item.text_id,
                    "domain": item.domain,
                    "speaker": recipe.voice,
                }
            )
            for item in spoken
        ]
    return write_text("".join(f"{line}\n" for line in lines), manifest)
