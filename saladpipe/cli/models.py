"""`saladpipe models build`: train the teacher and stage-I student the embedded default uses."""

from __future__ import annotations

import argparse
from pathlib import Path

from saladpipe.data_schemas.errors import ConfigError

RECIPES = ("default", "scratch", "reduced")


def _build(args: argparse.Namespace) -> int:
    from saladpipe.data_schemas.build_report import BuildReport
    from saladpipe.data_schemas.layout import cache_dir
    from saladpipe.progress import progress_to_stderr
    from saladpipe.training.build import BUILTIN_STUDENT, BUILTIN_TEACHER, ensure_models
    from saladpipe.training.recipe import DEFAULT_RECIPE, NAMED_RECIPES

    if args.seed < 0:
        raise ConfigError(f"--seed: must be at least 0 (got {args.seed})")
    recipe = NAMED_RECIPES[args.recipe].with_seed(args.seed)
    with progress_to_stderr():
        dirs = ensure_models(recipe, args.cache or cache_dir(), force=args.force)
    report = BuildReport.read(dirs[BUILTIN_TEACHER].parent)
    teacher, stage1 = report.teacher, report.stage1
    print(f"teacher: {dirs[BUILTIN_TEACHER]}")
    print(
        f"  held-out perplexity {teacher.perplexity:.1f} "
        f"(unigram {teacher.unigram_perplexity:.1f}) on {teacher.tokens} tokens; "
        f"trained on {teacher.train_texts} glosses"
    )
    print(f"student: {dirs[BUILTIN_STUDENT]}")
    heard = ", ".join(stage1.heard_domains)
    print(
        f"  stage I: {stage1.trained_rows} spoken prefixes of {heard}, "
        f"final loss {stage1.epoch_losses[-1]:.4f}"
    )
    if recipe == DEFAULT_RECIPE:
        print('used by models.teacher = { source = "builtin:trained-teacher" } (and -student)')
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
        "domain, then distil the speech-adapted student on Piper speech of a few domains. "
        "Built once per recipe and seed under the cache folder; the default recipe with "
        "seed 0 is what builtin:trained-teacher and builtin:trained-student load.",
    )
    build.add_argument("--seed", type=int, default=0)
    build.add_argument(
        "--recipe",
        choices=RECIPES,
        default="default",
        help="default: the student hears through pretrained Whisper tiny.en (frozen); "
        "scratch: the same with an encoder learnt from scratch, for comparison; "
        "reduced: tiny models in seconds, for smoke tests (they learn nothing useful)",
    )
    build.add_argument("--cache", type=Path, help="cache folder (default: $SALADPIPE_CACHE)")
    build.add_argument("--force", action="store_true", help="rebuild even if cached")
    build.set_defaults(handler=_build)
