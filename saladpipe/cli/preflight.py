"""One pre-flight check for every entry that starts a round: `saladpipe run`, `saladpipe
serve` and the deployment's scheduled flow.

Before any work it checks what the config validator cannot know (the strategy, the
voices and their licences, the model sources, the corpus files), decides what the run
folder allows (a new run, a resumed one, a next round, or a refusal naming why), and
builds the trained builtin models the config names. A mistake costs a one-line error
(exit 2) now, not a failure after ingest, embedding and scoring.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from saladpipe.data_schemas.config import BUILTIN_PREFIX, ModelSpec, RunConfig, is_builtin
from saladpipe.data_schemas.errors import ConfigError
from saladpipe.data_schemas.layout import RunLayout, cache_dir
from saladpipe.flows.lock import RunLock
from saladpipe.models import builtin
from saladpipe.models.loading import BuiltinDirs
from saladpipe.pipeline import ingest, ledger
from saladpipe.progress import progress_to_stderr
from saladpipe.selectors import create_strategy
from saladpipe.tts.voices import check_voices


class Folder(Enum):
    """What a run may do with its run folder."""

    NEW_OR_RESUME = "new or resume"  # `saladpipe run`: round 0, resumed if it is this config's
    OVERWRITE = "overwrite"  # `saladpipe run --overwrite`: clear the folder, round 0
    NEXT_ROUND = "next round"  # `saladpipe run --next-round`: add a round
    SCHEDULED = "scheduled"  # serve and deployments: round 0 until it finished, then next ones


@dataclass(frozen=True)
class Ready:
    """A checked config, the round to run, whether it resumes, and the trained models."""

    config: RunConfig
    round_index: int
    resuming: bool
    trained: BuiltinDirs


def preflight(config: RunConfig, folder: Folder, build_models: bool = True) -> Ready:
    """Check everything a round needs before it starts; raise ConfigError naming the culprit.
    `build_models=False` (serve) checks and decides without building anything yet."""
    check_names(config)
    round_index, resuming = choose_round(RunLayout(config.output_path()), config, folder)
    trained = trained_models(config) if build_models else ()
    return Ready(config, round_index, resuming, trained)


def check_names(config: RunConfig) -> None:
    """Names the config validator cannot resolve: registries, voices, models, corpus."""
    create_strategy(config.select)
    check_voices(config.tts)
    for role, spec in (("teacher", config.models.teacher), ("student", config.models.student)):
        _check_model(role, spec)
    if config.corpus.path is not None:
        ingest.input_files(config.corpus.path, config.corpus.format)


def _check_model(role: str, spec: ModelSpec) -> None:
    source = spec.source
    if is_builtin(source):
        known = (*builtin.PLACEHOLDER_NAMES, *builtin.BUILT_NAMES, *builtin.CONVERTED_NAMES)
        if source.removeprefix(BUILTIN_PREFIX) not in known:
            have = ", ".join(f"{BUILTIN_PREFIX}{n}" for n in known)
            raise ConfigError(
                f"config error: models.{role}.source: unknown builtin {source!r} (have: {have})"
            )
    elif source.startswith(("/", ".", "~")) and not Path(source).expanduser().is_dir():
        raise ConfigError(f"config error: models.{role}.source: folder not found: {source}")


def choose_round(layout: RunLayout, config: RunConfig, folder: Folder) -> tuple[int, bool]:
    """The round to run and whether it resumes an attempt at this config; refuses a folder
    that holds another run's files, unless told to overwrite it."""
    if folder is Folder.NEXT_ROUND or (
        folder is Folder.SCHEDULED and ledger.finished_rounds(layout)
    ):
        round_index = ledger.check_next_round(layout, config)
        return round_index, ledger.same_attempt(layout, config)
    content = layout.root.is_dir() and any(p != layout.state for p in layout.root.iterdir())
    if not content:
        return 0, False
    if folder is Folder.OVERWRITE:
        with RunLock(layout.state):
            _clear(layout)
        return 0, False
    if ledger.same_attempt(layout, config) and len(ledger.finished_rounds(layout)) <= 1:
        return 0, True
    remedy = (
        "point run.output_dir at a new folder"
        if folder is Folder.SCHEDULED
        else "choose another --output-dir, pass --overwrite, or add a round with --next-round"
    )
    raise ConfigError(
        f"run folder {layout.root} is not empty and holds no attempt at this config to "
        f"resume; {remedy}"
    )


def _clear(layout: RunLayout) -> None:
    """A new run: every file of the folder goes, with the ledger and the completion records;
    the Prefect database in state/ is kept."""
    for path in layout.root.iterdir():
        if path != layout.state:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    shutil.rmtree(layout.ledger_dir, ignore_errors=True)
    shutil.rmtree(layout.done_dir, ignore_errors=True)
    shutil.rmtree(layout.digests_dir, ignore_errors=True)


def trained_models(config: RunConfig) -> BuiltinDirs:
    """The trained builtin models' folders, built first if this machine has none (minutes,
    once; then cached for every run)."""
    names = builtin.builtin_names(config.models) & set(builtin.BUILT_NAMES)
    if not names:
        return ()
    from saladpipe.training.build import ROLE_NAMES, ensure_models
    from saladpipe.training.recipe import NAMED_RECIPES

    # Each recipe built (or found) once, whichever of its models the config names.
    recipes = sorted({builtin.BUILT_NAMES[name][0] for name in names})
    with progress_to_stderr():
        built = {recipe: ensure_models(NAMED_RECIPES[recipe], cache_dir()) for recipe in recipes}
    dirs = []
    for name in sorted(names):
        recipe, role = builtin.BUILT_NAMES[name]
        dirs.append((name, built[recipe][ROLE_NAMES[role]]))
    return tuple(dirs)
