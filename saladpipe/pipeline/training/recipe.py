"""What `saladpipe models build` makes, as one frozen, hashable recipe.

The recipe and its seed decide the models: the build cache is keyed by their hash,
so a changed recipe is a new build, never a stale one. Two presets: the default
(minutes on 2 CPU cores) and a reduced one for tests (seconds).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

from saladpipe.data_schemas.errors import ConfigError
from saladpipe.pipeline.corpora.wordnet import DEFAULT_DOMAINS

# Bumped when the build code changes what a recipe produces.
BUILD_FORMAT_VERSION = 1


@dataclass(frozen=True)
class TeacherRecipe:
    """A GPT-2 trained from scratch on glosses of every domain, with its own BPE tokenizer."""

    vocab_size: int = 2048
    hidden: int = 128
    layers: int = 2
    heads: int = 4
    context: int = 256
    texts: int = 10_000
    epochs: float = 1.0
    batch_size: int = 32
    learning_rate: float = 3e-3


@dataclass(frozen=True)
class EncoderRecipe:
    """A Whisper-style encoder (log-mel, two convolutions, transformer) learnt from scratch.

    `hop_length` 320 gives 50 mel frames a second and 25 encoder frames after the
    stride-2 convolution; `window_s` is the longest spoken prefix it takes.
    """

    hidden: int = 128
    layers: int = 2
    heads: int = 4
    mel_bins: int = 80
    hop_length: int = 320
    window_s: int = 10
    adapter_stride: int = 2
    adapter_hidden: int = 256


@dataclass(frozen=True)
class DistillRecipe:
    """Distillation training (stage I and II): KL(teacher on text ‖ student on speech), α = 1.

    `lm_learning_rate` 0 keeps the student's LM frozen (only encoder and adapter learn).
    """

    epochs: int = 8
    batch_size: int = 16
    learning_rate: float = 2e-3
    lm_learning_rate: float = 0.0
    warmup: float = 0.1


@dataclass(frozen=True)
class BuildRecipe:
    """Teacher, tokenizer and stage-I student, all from `seed`."""

    seed: int = 0
    # The student hears speech of these domains only in stage I.
    heard_domains: tuple[str, ...] = ("noun.animal", "noun.food", "noun.plant")
    stage1_texts_per_domain: int = 200
    voice: str = "builtin:joe-us"
    teacher: TeacherRecipe = field(default_factory=TeacherRecipe)
    encoder: EncoderRecipe = field(default_factory=EncoderRecipe)
    stage1: DistillRecipe = field(default_factory=DistillRecipe)

    def __post_init__(self) -> None:
        known = set(DEFAULT_DOMAINS.values())
        unknown = sorted(set(self.heard_domains) - known)
        if unknown or not self.heard_domains:
            raise ConfigError(
                f"config error: heard_domains: {unknown or 'none given'} "
                f"(known: {', '.join(sorted(known))})"
            )

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    def key(self) -> str:
        """Hash of the recipe and the build format: the cache folder's name."""
        payload = json.dumps(
            {"format": BUILD_FORMAT_VERSION, "recipe": self.as_dict()}, sort_keys=True
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def with_seed(self, seed: int) -> BuildRecipe:
        return dataclasses.replace(self, seed=seed)


DEFAULT_RECIPE = BuildRecipe()

# Seconds on 2 cores, for tests: every step runs, nothing is expected to be learnt.
REDUCED_RECIPE = BuildRecipe(
    heard_domains=("noun.animal", "noun.food"),
    stage1_texts_per_domain=6,
    teacher=TeacherRecipe(
        vocab_size=400, hidden=32, layers=1, heads=2, context=128, texts=400, batch_size=16
    ),
    encoder=EncoderRecipe(hidden=32, layers=1, heads=2, mel_bins=40, adapter_hidden=64),
    stage1=DistillRecipe(epochs=2, batch_size=4),
)
