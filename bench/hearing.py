"""Does the builtin stage-I student hear what was said, or only which kind of text it is?

Evaluates the trained student (`saladpipe models build`) on the experiment's held-out
evaluation set three times: with each prefix's own clip, with another row's clip (a
seeded derangement, so every row hears someone else's words), and with silence of
the same length. A student that understands speech does clearly worse on another
row's clip; one that learnt only a prior over continuations (what glosses tend to
say after any prefix) does about as well without its own clip. The teacher's text
accuracy is the ceiling; chance on the 4-way question is 0.25.

Usage: .venv/bin/python -m bench.hearing [--cache DIR]
About 2 minutes on 2 CPU cores when the build and its clips are cached (the
experiment's cache), longer when it must build or speak them first.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

from bench.experiment_arms import ExperimentConfig, draw_glosses
from bench.experiment_report import heard_and_unheard
from saladpipe.data_schemas.config import ModelSpec
from saladpipe.data_schemas.layout import cache_dir
from saladpipe.models.loading import load_student, load_teacher
from saladpipe.models.speech_lm import SpeechAdaptedLM
from saladpipe.training.build import BUILTIN_STUDENT, BUILTIN_TEACHER, ensure_models
from saladpipe.training.evaluate import evaluate, make_eval_set
from saladpipe.training.optim import TRAIN_THREADS, torch_threads
from saladpipe.training.speech import (
    ClipCache,
    SpokenPrefix,
    speech_settings,
    spoken_prefixes,
)


def derangement(n: int, seed: int) -> np.ndarray:
    """A seeded permutation of range(n) that moves every index."""
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(n)
        if not np.any(order == np.arange(n)):
            return order


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=None, help="default: the saladpipe cache")
    args = parser.parse_args(argv)
    cache_root = args.cache or cache_dir()
    config = ExperimentConfig()
    heard = set(config.build.heard_domains)
    dirs = ensure_models(config.build, cache_root)
    with torch_threads(TRAIN_THREADS):
        teacher = load_teacher(ModelSpec(source=str(dirs[BUILTIN_TEACHER])), "cpu", "float32")
        student = load_student(ModelSpec(source=str(dirs[BUILTIN_STUDENT])), "cpu", "float32")
        assert isinstance(student, SpeechAdaptedLM)
        _, _, eval_glosses = draw_glosses(config)
        with ClipCache(cache_root, speech_settings(config.build.voice)) as cache:
            own, _ = spoken_prefixes(eval_glosses, cache, "evaluation prefixes")
        order = derangement(len(own), config.data_seed)
        variants: dict[str, list[SpokenPrefix]] = {
            "its own clip": own,
            "another row's clip": [
                dataclasses.replace(item, audio=own[j].audio)
                for item, j in zip(own, order, strict=True)
            ],
            "silence of the same length": [
                dataclasses.replace(item, audio=np.zeros_like(item.audio)) for item in own
            ],
        }
        print(f"stage-I student, {len(own)} held-out prefixes, heard: {', '.join(sorted(heard))}")
        print(
            f"  {'each prefix heard as':30s} {'misalign.':>9s} {'heard d.':>9s} "
            f"{'unheard d.':>10s} {'speech MC':>9s} {'text MC':>8s}"
        )
        for name, items in variants.items():
            eval_set = make_eval_set(teacher, student, items, config.choices, config.data_seed)
            result = evaluate(teacher, student, eval_set)
            heard_mis, unheard_mis = heard_and_unheard(result.by_domain, heard)
            print(
                f"  {name:30s} {result.misalignment:9.4f} {heard_mis:9.4f} {unheard_mis:10.4f} "
                f"{result.speech_accuracy:9.3f} {result.text_accuracy:8.3f}"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
