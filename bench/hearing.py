"""Does the stage-I student hear what was said, or only which kind of text it is?

Evaluates stage-I students (the build's, and more seeds trained from the same teacher
and clips) on the experiment's held-out evaluation set, heard and unheard domains
apart, three times: with each prefix's own clip, with another row's clip (a seeded
derangement, so every row hears someone else's words), and with silence of the same
length. A student that understands speech does clearly worse on another row's clip
and answers the spoken multiple-choice question well above chance; one that learnt
only a prior over continuations does about as well without its own clip. The
teacher's text accuracy is the ceiling; chance on the 4-way question is 0.25.

The gate (issue "A student that hears words"): on heard domains, own clip better than
another row's clip and than silence, in misalignment and in spoken accuracy, and
spoken accuracy above chance, each by more than twice the spread over seeds.

Usage: .venv/bin/python -m bench.hearing [--encoder pretrained|scratch] [--seeds 0 1 2]
                                         [--reduced]
About 10 minutes on 2 CPU cores for three seeds when the build and its clips are
cached (the experiment's cache), longer when it must build or speak them first.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench.experiment_arms import REDUCED_EXPERIMENT, ExperimentConfig, draw_glosses
from bench.machine import machine
from saladpipe.data_schemas.config import ModelSpec
from saladpipe.data_schemas.layout import cache_dir
from saladpipe.models.loading import Teacher, load_student, load_teacher
from saladpipe.models.speech_lm import SpeechAdaptedLM
from saladpipe.training.build import (
    BUILTIN_STUDENT,
    BUILTIN_TEACHER,
    ensure_models,
    train_stage1,
)
from saladpipe.training.evaluate import evaluate, make_eval_set
from saladpipe.training.optim import TRAIN_THREADS, torch_threads
from saladpipe.training.recipe import NAMED_RECIPES, BuildRecipe
from saladpipe.training.speech import ClipCache, SpokenPrefix, speech_settings, spoken_prefixes
from saladpipe.training.texts import build_texts

VARIANTS = ("its own clip", "another row's clip", "silence of the same length")
CHANCE = 0.25


def derangement(n: int, seed: int) -> np.ndarray:
    """A seeded permutation of range(n) that moves every index."""
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(n)
        if not np.any(order == np.arange(n)):
            return order


def variants(own: Sequence[SpokenPrefix], seed: int) -> dict[str, list[SpokenPrefix]]:
    """The same prefixes heard as their own clip, another row's, and silence."""
    order = derangement(len(own), seed)
    return {
        VARIANTS[0]: list(own),
        VARIANTS[1]: [
            dataclasses.replace(item, audio=own[j].audio)
            for item, j in zip(own, order, strict=True)
        ],
        VARIANTS[2]: [dataclasses.replace(item, audio=np.zeros_like(item.audio)) for item in own],
    }


def students(
    recipe: BuildRecipe, seeds: Sequence[int], cache_root: Path
) -> tuple[Teacher, list[SpeechAdaptedLM]]:
    """The build's teacher, and a stage-I student per seed (the first is the build's own)."""
    dirs = ensure_models(recipe.with_seed(seeds[0]), cache_root)
    teacher = load_teacher(ModelSpec(source=str(dirs[BUILTIN_TEACHER])), "cpu", "float32")
    built = load_student(ModelSpec(source=str(dirs[BUILTIN_STUDENT])), "cpu", "float32")
    assert isinstance(built, SpeechAdaptedLM)
    found = [built]
    # The students share one frozen encoder: each clip is encoded once for all of them.
    memo = None if recipe.encoder.trainable else built.new_frame_memo()
    if len(seeds) > 1:
        with ClipCache(cache_root, speech_settings(recipe.voice)) as cache:
            items, _ = spoken_prefixes(build_texts(recipe).stage1, cache, "stage-I prefixes")
        found += [train_stage1(teacher, items, recipe, seed, memo).student for seed in seeds[1:]]
    return teacher, found


def spread(values: Sequence[float]) -> str:
    return f"{np.mean(values):.3f} ± {_sd(values):.3f}"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=None, help="default: the saladpipe cache")
    parser.add_argument("--encoder", choices=("pretrained", "scratch"), default="pretrained")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--reduced", action="store_true", help="the reduced experiment's models (the CI test's)"
    )
    args = parser.parse_args(argv)
    cache_root = args.cache or cache_dir()
    if args.reduced:
        # Enough held-out rows that the heard side can make 4-way questions.
        config = dataclasses.replace(REDUCED_EXPERIMENT, eval_per_domain=3)
    else:
        recipe = NAMED_RECIPES["scratch" if args.encoder == "scratch" else "default"]
        config = ExperimentConfig(build=recipe)
    recipe = config.build
    heard = set(recipe.heard_domains)
    # (side, variant) -> metric -> one value per seed
    table: dict[tuple[str, str], dict[str, list[float]]] = {}
    text_mc: dict[str, float] = {}
    with torch_threads(TRAIN_THREADS):
        teacher, found = students(recipe, args.seeds, cache_root)
        _, _, eval_glosses = draw_glosses(config)
        with ClipCache(cache_root, speech_settings(recipe.voice)) as cache:
            own, _ = spoken_prefixes(eval_glosses, cache, "evaluation prefixes")
        sides = {
            "heard": [i for i in own if i.domain in heard],
            "unheard": [i for i in own if i.domain not in heard],
        }
        for side, items in sides.items():
            for name, heard_as in variants(items, config.data_seed).items():
                cell = table.setdefault((side, name), {"misalignment": [], "speech MC": []})
                for student in found:
                    eval_set = make_eval_set(
                        teacher, student, heard_as, config.choices, config.data_seed
                    )
                    result = evaluate(teacher, student, eval_set)
                    cell["misalignment"].append(result.misalignment)
                    cell["speech MC"].append(result.speech_accuracy)
                    text_mc[side] = result.text_accuracy
    print(f"machine: {machine()}; training on {TRAIN_THREADS} thread(s)")
    print(
        f"stage-I students ({type(recipe.encoder).__name__}, seeds {args.seeds}), "
        f"{len(own)} held-out prefixes, heard domains: {', '.join(sorted(heard))}"
    )
    print("\n| domains | each prefix heard as | misalignment | spoken MC | text MC (teacher) |")
    print("|---|---|---|---|---|")
    for (side, name), cell in table.items():
        print(
            f"| {side} | {name} | {spread(cell['misalignment'])} | "
            f"{spread(cell['speech MC'])} | {text_mc[side]:.3f} |"
        )
    print()
    for line in gate(table):
        print(line)


def gate(table: dict[tuple[str, str], dict[str, list[float]]]) -> list[str]:
    """The issue's gate on heard domains, each margin against twice the spread over seeds."""
    own = table[("heard", VARIANTS[0])]
    lines = []
    for other in VARIANTS[1:]:
        rest = table[("heard", other)]
        for metric, sign in (("misalignment", -1.0), ("speech MC", 1.0)):
            margin = sign * float(np.mean(own[metric]) - np.mean(rest[metric]))
            noise = 2 * max(_sd(own[metric]), _sd(rest[metric]))
            verdict = "PASS" if margin > noise else "FAIL"
            lines.append(
                f"{verdict}: own clip vs {other}, {metric}: {margin:+.3f} (2 sd {noise:.3f})"
            )
    margin = float(np.mean(own["speech MC"])) - CHANCE
    noise = 2 * _sd(own["speech MC"])
    verdict = "PASS" if margin > noise else "FAIL"
    lines.append(f"{verdict}: spoken MC above chance {CHANCE}: {margin:+.3f} (2 sd {noise:.3f})")
    return lines


def _sd(values: Sequence[float]) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


if __name__ == "__main__":
    main(sys.argv[1:])
