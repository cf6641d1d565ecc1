"""`saladpipe models build`: train the teacher and stage-I student the embedded default uses."""

from __future__ import annotations

import argparse
from pathlib import Path

from saladpipe.data_schemas.errors import ConfigError

RECIPES = ("default", "scratch", "smollm2", "reduced")
# How each recipe's models are named in a config.
USE_LINES = {
    "default": 'models.teacher = { source = "builtin:trained-teacher" } (and -student)',
    "smollm2": 'models.teacher = { source = "builtin:smollm2-135m" }, '
    'models.student = { source = "builtin:smollm2-student" } (examples/smollm2.toml)',
}


def _build(args: argparse.Namespace) -> int:
    from saladpipe.data_schemas.build_report import REPORT_FILE, BuildReport
    from saladpipe.data_schemas.layout import cache_dir
    from saladpipe.progress import progress_to_stderr
    from saladpipe.training.build import (
        BUILTIN_STUDENT,
        BUILTIN_TEACHER,
        built_folder,
        ensure_models,
        estimate,
    )
    from saladpipe.training.recipe import NAMED_RECIPES

    if args.seed < 0:
        raise ConfigError(f"--seed: must be at least 0 (got {args.seed})")
    recipe = NAMED_RECIPES[args.recipe].with_seed(args.seed)
    cache = args.cache or cache_dir()
    built = (built_folder(recipe, cache) / REPORT_FILE).is_file() and not args.force
    with progress_to_stderr():
        if not built:
            for line in estimate(recipe, cache).describe():
                print(line, flush=True)
            if args.estimate:
                return 0
        elif args.estimate:
            print(f"already built: {built_folder(recipe, cache)} (nothing to do)")
            return 0
        dirs = ensure_models(recipe, cache, force=args.force)
    report = BuildReport.read(dirs[BUILTIN_TEACHER].parent)
    teacher, stage1 = report.teacher, report.stage1
    print(f"teacher: {dirs[BUILTIN_TEACHER]}")
    trained = f"trained on {teacher.train_texts} glosses" if teacher.train_texts else "pretrained"
    print(
        f"  held-out perplexity {teacher.perplexity:.1f} "
        f"(unigram {teacher.unigram_perplexity:.1f}) on {teacher.tokens} tokens; {trained}"
    )
    print(f"student: {dirs[BUILTIN_STUDENT]}")
    heard = ", ".join(stage1.heard_domains)
    print(
        f"  stage I: {stage1.trained_rows} spoken prefixes of {heard}, "
        f"final loss {stage1.epoch_losses[-1]:.4f}"
    )
    took = ", ".join(f"{stage} {seconds:.0f} s" for stage, seconds in report.seconds.items())
    print(f"  built in {sum(report.seconds.values()):.0f} s ({took})")
    if args.seed == 0 and args.recipe in USE_LINES:
        print(f"used by {USE_LINES[args.recipe]}")
    else:
        print(f'use with models.teacher = {{ source = "{dirs[BUILTIN_TEACHER]}" }} (and student)')
    return 0


def add_models_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    models = commands.add_parser("models", help="build the trained builtin teacher and student")
    actions = models.add_subparsers(dest="models_command", required=True)
    build = actions.add_parser(
        "build",
        help="train the teacher and the stage-I student (minutes on 2 cores; cached)",
        description="Train a GPT-2 teacher and its tokenizer on WordNet glosses of every "
        "domain (or, --recipe smollm2, take the pretrained SmolLM2-135M-Instruct as it is), "
        "then distil the speech-adapted student on Piper speech of a few domains. Prints "
        "the build's cost on this machine first, measured on a pilot of each stage. Built "
        "once per recipe and seed under the cache folder; with seed 0 the default recipe is "
        "what builtin:trained-teacher and builtin:trained-student load, the smollm2 recipe "
        "what builtin:smollm2-student loads.",
    )
    build.add_argument("--seed", type=int, default=0)
    build.add_argument(
        "--recipe",
        choices=RECIPES,
        default="default",
        help="default: the student hears through pretrained Whisper tiny.en (frozen); "
        "scratch: the same with an encoder learnt from scratch, for comparison; "
        "smollm2: the pretrained SmolLM2-135M-Instruct as teacher, and a student of Whisper "
        "tiny.en, an adapter and a frozen SmolLM2 (about 10 minutes on 2 cores); "
        "reduced: tiny models in seconds, for smoke tests (they learn nothing useful)",
    )
    build.add_argument("--cache", type=Path, help="cache folder (default: $SALADPIPE_CACHE)")
    build.add_argument("--force", action="store_true", help="rebuild even if cached")
    build.add_argument(
        "--estimate",
        action="store_true",
        help="print the build's cost on this machine (measured on a pilot) and stop",
    )
    build.set_defaults(handler=_build)
