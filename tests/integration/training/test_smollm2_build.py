"""The smollm2 recipe for real, on a slice small enough for CI: the pretrained SmolLM2
teacher taken as it is, a student of Whisper tiny.en, an adapter and a frozen copy of
SmolLM2 distilled on Piper speech, saved, loaded through a run config's builtin name,
and announced by `saladpipe models build` with its cost before it starts."""

from __future__ import annotations

import dataclasses
import filecmp
from pathlib import Path

import pytest
import torch

import saladpipe.training.recipe as recipes
from saladpipe.cli import main
from saladpipe.cli.preflight import check_names, trained_models
from saladpipe.data_schemas.build_report import BuildReport
from saladpipe.data_schemas.config import ModelSpec, load_config
from saladpipe.data_schemas.layout import cache_dir
from saladpipe.models import SpeechAdaptedLM, load_student, load_teacher
from saladpipe.models.distillation import STATUS_OK
from saladpipe.progress import logger
from saladpipe.training.build import built_folder, ensure_models
from saladpipe.training.distill import score_items, scorer_for
from saladpipe.training.recipe import (
    DEFAULT_RECIPE,
    SMOLLM2_RECIPE,
    DistillRecipe,
    PretrainedTeacherRecipe,
)
from saladpipe.training.speech import ClipCache, speech_settings, spoken_prefixes
from saladpipe.training.texts import build_texts

EXAMPLE = Path(__file__).parents[3] / "examples" / "smollm2.toml"

# Six spoken prefixes of one domain, two epochs of two steps.
SMALL = dataclasses.replace(
    SMOLLM2_RECIPE,
    heard_domains=("noun.animal",),
    stage1_texts_per_domain=6,
    teacher=PretrainedTeacherRecipe(texts=300, perplexity_texts=12),
    stage1=DistillRecipe(epochs=2, batch_size=3),
)


@pytest.fixture
def small_recipe(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--recipe smollm2` and `builtin:smollm2-student` mean the small slice."""
    monkeypatch.setitem(recipes.NAMED_RECIPES, "smollm2", SMALL)


def test_models_build_smollm2_prints_its_cost_then_builds_with_progress(
    small_recipe: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Logging as a bare `saladpipe` process has it (pytest attaches handlers of its own).
    monkeypatch.setattr(logger, "hasHandlers", lambda: False)
    assert main(["models", "build", "--recipe", "smollm2", "--force"]) == 0
    out = capsys.readouterr()
    lines = out.out.splitlines()
    estimate = lines.index(next(line for line in lines if line.startswith("estimated cost")))
    built = lines.index(next(line for line in lines if line.startswith("teacher: ")))
    assert estimate < built, "the cost is printed before the build starts"
    stages = [line.split(":")[0].strip() for line in lines[estimate + 1 : built]]
    assert stages == [
        "teacher perplexity",
        "speech",
        "stage I encoding",
        "stage I",
        "total",
    ]
    assert "stage I: 12 row steps" in out.out  # 6 rows x 2 epochs
    assert "pretrained" in out.out and "builtin:smollm2-student" in out.out
    assert "stage-I distillation: 4/4 steps in" in out.err  # the build's progress
    # Built: --estimate now says so and measures nothing.
    assert main(["models", "build", "--recipe", "smollm2", "--estimate"]) == 0
    assert capsys.readouterr().out.startswith("already built: ")


def test_the_student_hears_through_a_frozen_copy_of_the_pretrained_teacher() -> None:
    dirs = ensure_models(SMALL, cache_dir())
    teacher = load_teacher(ModelSpec(source=str(dirs["trained-teacher"])), "cpu", "float32")
    student = load_student(ModelSpec(source=str(dirs["trained-student"])), "cpu", "float32")
    assert isinstance(student, SpeechAdaptedLM)
    from saladpipe.assets.smollm2 import ensure_smollm2

    converted = ensure_smollm2()
    assert filecmp.cmp(
        converted / "model.safetensors", dirs["trained-teacher"] / "model.safetensors", False
    )
    lm = student.lm.state_dict()
    for name, weight in teacher.model.state_dict().items():
        assert torch.equal(lm[name], weight), f"the student's LM moved: {name}"
    report = BuildReport.read(dirs["trained-teacher"].parent)
    assert report.teacher.train_texts == 0 and report.teacher.texts == 12
    assert report.teacher.perplexity < report.teacher.unigram_perplexity / 5
    assert report.stage1.heard_domains == ["noun.animal"]
    assert report.stage1.trained_rows == 6 and len(report.stage1.epoch_losses) == 2
    assert report.versions["torch_threads"] >= 1
    # The saved student scores its own stage-I clips like the one that was trained.
    texts = build_texts(SMALL)
    with ClipCache(cache_dir(), speech_settings(SMALL.voice)) as cache:
        items, _ = spoken_prefixes(texts.stage1, cache, "stage-I prefixes")
    scores = scorer_for(teacher, student).score(score_items(items))
    assert len(scores) == 6
    assert all(s.status == STATUS_OK and 0 < (s.misalignment or 0) < 10 for s in scores)


def test_a_run_config_names_the_built_student(small_recipe: None) -> None:
    config = load_config(EXAMPLE)
    check_names(config)
    dirs = dict(trained_models(config))
    assert dirs == {"smollm2-student": built_folder(SMALL, cache_dir()) / "student"}


def test_the_recipe_hears_the_default_s_glosses_and_keys_its_conversion(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert build_texts(SMOLLM2_RECIPE).stage1 == build_texts(DEFAULT_RECIPE).stage1
    assert len(build_texts(SMOLLM2_RECIPE).perplexity) == 200
    key = SMOLLM2_RECIPE.key()
    default_key = DEFAULT_RECIPE.key()
    monkeypatch.setattr(recipes, "SMOLLM2_FORMAT_VERSION", recipes.SMOLLM2_FORMAT_VERSION + 1)
    assert SMOLLM2_RECIPE.key() != key and DEFAULT_RECIPE.key() == default_key


def test_the_example_differs_from_the_embedded_default_in_its_models_only() -> None:
    """Everything but the models (and the run's name) is the default's, so the default's
    end-to-end tests hold for it; bench/example_run.py runs it whole (docs/benchmarks.md)."""
    example = load_config(EXAMPLE).model_dump()
    default = load_config(EXAMPLE.with_name("quickstart.toml")).model_dump()
    assert example["models"]["teacher"]["source"] == "builtin:smollm2-135m"
    assert example["models"]["student"]["source"] == "builtin:smollm2-student"
    for config in (example, default):
        del config["run"]["name"], config["models"]["teacher"], config["models"]["student"]
    assert example == default
