"""What `builtin:NAME` model sources resolve to, built on first use and cached.

Two families share the loading code of any checkpoint folder:
- the placeholders (`placeholder-teacher`, `placeholder-student`): random weights,
  built in seconds from the run's corpus and seed, for fast tests only;
- the trained models (`trained-teacher`, `trained-student`): the default recipe of
  `saladpipe models build`, minutes to build once, then cached for every run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from saladpipe.data_schemas.config import BUILTIN_PREFIX, ModelsSection, is_builtin

if TYPE_CHECKING:
    from saladpipe.training.recipe import BuildRecipe

PLACEHOLDER_NAMES = ("placeholder-teacher", "placeholder-student")
TRAINED_NAMES = ("trained-teacher", "trained-student")


def builtin_names(models: ModelsSection) -> set[str]:
    """The builtin names a config's teacher and student use."""
    sources = (models.teacher.source, models.student.source)
    return {s.removeprefix(BUILTIN_PREFIX) for s in sources if is_builtin(s)}


def uses_placeholders(models: ModelsSection) -> bool:
    """True when teacher or student is a placeholder with meaningless weights."""
    return bool(builtin_names(models) & set(PLACEHOLDER_NAMES))


def ensure_builtin_models(
    models: ModelsSection,
    texts: Callable[[], Sequence[str]],
    seed: int,
    cache_root: Path,
    trained_recipe: BuildRecipe | None = None,
) -> dict[str, Path]:
    """Folders of the builtins the config names (an unknown name is left to the loader's
    error, which lists the known ones); `texts` (the corpus) is read for placeholders only.

    The trained names load the default recipe's build (`trained_recipe` replaces it in
    tests); the run's seed does not change them, so every run shares one build.
    """
    names = builtin_names(models)
    dirs: dict[str, Path] = {}
    if names & set(PLACEHOLDER_NAMES):
        from saladpipe.models.placeholder import ensure_placeholder_models

        dirs.update(ensure_placeholder_models(cache_root / "models", texts(), seed))
    if names & set(TRAINED_NAMES):
        from saladpipe.training.build import ensure_models
        from saladpipe.training.recipe import DEFAULT_RECIPE

        dirs.update(ensure_models(trained_recipe or DEFAULT_RECIPE, cache_root))
    return dirs


def trained_note(dirs: dict[str, Path]) -> str | None:
    """What the trained builtins are, for the run's log and manifest (None if unused)."""
    folder = next((dirs[n].parent for n in TRAINED_NAMES if n in dirs), None)
    if folder is None:
        return None
    from saladpipe.training.build import read_report

    report = read_report(folder)
    teacher = report["teacher"]
    stage1 = report["stage1"]
    return (
        f"teacher/student are the builtin TRAINED models (recipe {report['recipe_key']}): "
        f"a GPT-2 trained on WordNet glosses of every domain (held-out perplexity "
        f"{teacher['perplexity']:.1f}, unigram {teacher['unigram_perplexity']:.1f}) and a "
        f"student that heard Piper speech of {', '.join(stage1['heard_domains'])} only; "
        "clusters of the other domains are expected at the top of the gap ranking"
    )
