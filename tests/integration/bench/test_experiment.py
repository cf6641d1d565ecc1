"""The reduced experiment, through the bench script: every arm trains and is evaluated.

It checks the plumbing only (toy sizes learn nothing); the full experiment and its
reading are in docs/experiments.md.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np

from bench.experiment_arms import REDUCED_EXPERIMENT
from bench.experiment_report import BEGIN_MARK, END_MARK
from saladpipe.models import fingerprint_dir
from tests.integration.bench import run_bench


def test_reduced_experiment_trains_and_evaluates_every_arm(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "experiments.md").write_text("# Experiments\n\nA reading kept as it is.\n")
    cache = tmp_path / "cache"
    done = _experiment_script(cache, "--reduced", "--docs", str(docs))
    assert "salad-g5 / random" in done.stdout

    results = json.loads((docs / "experiments_results.json").read_text())
    config = REDUCED_EXPERIMENT
    records = results["records"]
    # Every arm and budget from the build's own student; the sweep's arms at the largest
    # budget from each student that heard more domains.
    expected = {
        (heard, arm.name, seed, budget)
        for heard in config.concentrations
        for arm in config.arms_for(heard)[0]
        for seed in config.seeds
        for budget in config.arms_for(heard)[1]
    }
    assert {(r["heard"], r["arm"], r["seed"], r["budget"]) for r in records} == expected
    assert {r["arm"] for r in records if r["heard"] == 3} == set(config.sweep_arms)
    for record in records:
        assert record["picked"] == record["budget"]
        assert record["trained_rows"] + sum(record["refused_rows"].values()) <= record["picked"]
        assert sum(record["picked_domains"].values()) == record["picked"]
        for key in ("misalignment", "forgetting", "text_accuracy", "speech_accuracy"):
            assert math.isfinite(record[key]), (record["arm"], key)
        assert record["scored"] > 0
    settings = results["settings"]
    assert [s["heard"] for s in settings] == list(config.concentrations)
    for setting in settings:
        heard = setting["stage1"]["heard_domains"]
        assert heard == sorted(config.heard_order[: setting["heard"]])
        assert setting["build"]["stage1"]["heard_domains"] == heard
        assert set(setting["stage1"]["evaluation"]["by_domain"]) >= set(heard)
        assert len(setting["clusters"]) == config.clusters
    # One teacher for every setting (the sweep trains only new students).
    models = cache / "models"
    assert len(list(models.glob("teacher-*"))) == 1
    builds = sorted(models.glob("trained-*"))
    assert len(builds) == len(config.concentrations)
    assert len({fingerprint_dir(b / "teacher") for b in builds}) == 1
    # The frozen encoder heard each distinct clip once, however many students heard it.
    assert 0 < results["encoded_clips"] <= results["speech"]["asked"]

    text = (docs / "experiments.md").read_text()
    assert text.startswith("# Experiments\n\nA reading kept as it is.\n")
    assert text.count(BEGIN_MARK) == 1 and text.count(END_MARK) == 1
    for arm in config.arms:
        assert f"| {arm.name} |" in text
    assert "concentration sweep" in text and "| 3 of 12 (budget 8) |" in text
    assert (docs / "experiments_misalignment.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The tables re-rendered from the saved results, without training, are the same.
    again = tmp_path / "again"
    again.mkdir()
    _experiment_script(
        cache,
        "--reduced",
        "--docs",
        str(again),
        "--from-results",
        str(docs / "experiments_results.json"),
    )
    generated = text[text.index(BEGIN_MARK) :]
    assert (again / "experiments.md").read_text().endswith(generated)
    assert not (again / "experiments_results.json").exists()  # nothing new was measured


def _experiment_script(cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """bench/experiment.py with `args`, its models and clips under `cache`; must succeed."""
    return run_bench("bench.experiment", cache, *args)


def _record(arm: str, seed: int, misalignment: float, accuracy: float) -> dict[str, object]:
    return {
        "arm": arm,
        "seed": seed,
        "budget": 10,
        "misalignment": misalignment,
        "speech_accuracy": accuracy,
        "accuracy_gap": 0.5 - accuracy,
        "forgetting": 0.0,
    }


def test_differences_count_only_beyond_the_spread() -> None:
    from bench.experiment_report import comparison_table

    records = [
        *(_record("random", s, 1.0 + 0.01 * s, 0.30 + 0.01 * s) for s in range(3)),
        *(_record("clear", s, 0.5 + 0.01 * s, 0.31 + 0.01 * s) for s in range(3)),
    ]
    row = next(line for line in comparison_table(records, 10).splitlines() if "| clear |" in line)
    cells = [c.strip() for c in row.strip("|").split("|")][1:]
    assert cells[0] == "-0.5000 (better)"  # lower misalignment, far beyond the spread
    assert cells[1] == "+0.0100 (within spread)"
    assert cells[2] == "-0.0100 (within spread)"


def test_transfer_measures_how_much_a_domain_gains_per_share_of_the_picks() -> None:
    """Gains that follow the picks give slope and r; gains that do not give r near 0."""
    from bench.experiment_report import share_and_gain, transfer_table

    stage1 = {"a": 1.0, "b": 1.0, "c": 1.0}

    def record(seed: int, picks: dict[str, int], by_domain: dict[str, float]) -> dict[str, object]:
        return {
            "arm": "random",
            "seed": seed,
            "budget": 10,
            "heard": 1,
            "picked": 10,
            "picked_domains": picks,
            "by_domain": by_domain,
        }

    # Each domain drops by 0.05 per pick (0.5 at a full share).
    following = [
        record(0, {"a": 10}, {"a": 0.5, "b": 1.0, "c": 1.0}),
        record(1, {"a": 5, "b": 5}, {"a": 0.75, "b": 0.75, "c": 1.0}),
    ]
    shares, gains = share_and_gain(following, stage1)
    assert shares.tolist() == [1.0, 0.0, 0.0, 0.5, 0.5, 0.0]
    assert np.allclose(gains, [0.5, 0.0, 0.0, 0.25, 0.25, 0.0])
    settings = [{"heard": 1, "stage1": {"evaluation": {"by_domain": stage1}}}]
    row = transfer_table({"settings": settings, "records": following}).splitlines()[-1]
    assert row.startswith("| 1 of 12 | +0.0500 | +1.00 | 0.0000 | 0.3333 |")
    # Every domain gains the same whatever the picks: nothing to steer.
    flat = [
        record(0, {"a": 10}, {"a": 0.8, "b": 0.8, "c": 0.8}),
        record(1, {"b": 10}, {"a": 0.8, "b": 0.8, "c": 0.8}),
    ]
    row = transfer_table({"settings": settings, "records": flat}).splitlines()[-1]
    assert "| +0.0000 |" in row and "| 0.2000 | 0.2000 |" in row


def test_the_hearing_gate_passes_only_margins_beyond_twice_the_spread() -> None:
    """bench/hearing.py's verdicts: a student that hears beats the other clip and silence
    by more than twice the spread over seeds; one whose own clip helps less does not."""
    from bench.hearing import VARIANTS, gate, variants

    def cell(mis: list[float], mc: list[float]) -> dict[str, list[float]]:
        return {"misalignment": mis, "speech MC": mc}

    hearing = {
        ("heard", VARIANTS[0]): cell([1.0, 1.1, 1.2], [0.45, 0.50, 0.55]),
        ("heard", VARIANTS[1]): cell([1.6, 1.7, 1.8], [0.25, 0.27, 0.29]),
        ("heard", VARIANTS[2]): cell([1.5, 1.6, 1.7], [0.24, 0.26, 0.28]),
    }
    assert all(line.startswith("PASS") for line in gate(hearing))
    deaf = dict(hearing) | {("heard", VARIANTS[1]): cell([1.1, 1.2, 1.3], [0.40, 0.45, 0.50])}
    verdicts = [line.split(":")[0] for line in gate(deaf)]
    assert verdicts == ["FAIL", "FAIL", "PASS", "PASS", "PASS"]
    # Every row hears another row's clip, never its own; silence keeps each clip's length.
    import numpy as np

    from saladpipe.corpora.wordnet import Gloss
    from saladpipe.training.speech import SpokenPrefix

    own = [
        SpokenPrefix(Gloss(f"g{i}", "noun.animal", "a b"), "a", "b", np.ones(100 + i, np.float32))
        for i in range(5)
    ]
    heard_as = variants(own, seed=0)
    assert all(a.audio is not b.audio for a, b in zip(own, heard_as[VARIANTS[1]], strict=True))
    assert sorted(id(x.audio) for x in heard_as[VARIANTS[1]]) == sorted(id(x.audio) for x in own)
    assert [x.audio.shape for x in heard_as[VARIANTS[2]]] == [x.audio.shape for x in own]
    assert not any(x.audio.any() for x in heard_as[VARIANTS[2]])


def test_the_hearing_bench_runs_and_gives_every_verdict(tmp_path: Path) -> None:
    """bench/hearing.py end to end on the reduced models: two seeds, both sides, the
    three ways of hearing each prefix, and the gate's five verdicts."""
    from bench.hearing import VARIANTS

    done = run_bench("bench.hearing", tmp_path / "cache", "--reduced", "--seeds", "0", "1")
    rows = [line for line in done.stdout.splitlines() if line.startswith("| heard |")]
    assert [row.split("|")[2].strip() for row in rows] == list(VARIANTS)
    assert sum(line.startswith("| unheard |") for line in done.stdout.splitlines()) == 3
    verdicts = [line for line in done.stdout.splitlines() if line[:5] in ("PASS:", "FAIL:")]
    assert len(verdicts) == 5
    assert "PretrainedEncoderRecipe, seeds [0, 1]" in done.stdout


def test_the_grid_options_narrow_either_model_set_and_are_recorded() -> None:
    """`--models smollm2` is the same grid on the SmolLM2 build; the grid options narrow it
    (the measured CPU subset), and the document names the command without its paths."""
    import argparse

    import pytest

    from bench.experiment import command, grid
    from bench.experiment_arms import SMOLLM2_EXPERIMENT
    from saladpipe.training.recipe import SMOLLM2_RECIPE

    def args(**given: object) -> argparse.Namespace:
        base = {"reduced": False, "models": "smollm2", "budgets": None, "seeds": None}
        return argparse.Namespace(**{**base, "concentrations": None, **given})

    assert grid(args()) == SMOLLM2_EXPERIMENT and SMOLLM2_EXPERIMENT.build == SMOLLM2_RECIPE
    narrowed = grid(args(budgets=(100,), seeds=(0,), concentrations=(3,)))
    assert (narrowed.budgets, narrowed.seeds, narrowed.concentrations) == ((100,), (0,), (3,))
    assert narrowed.build == SMOLLM2_RECIPE and narrowed.arms == SMOLLM2_EXPERIMENT.arms
    with pytest.raises(SystemExit, match="concentrations must start at the build's 3"):
        grid(args(concentrations=(4,)))
    argv = ["--models", "smollm2", "--docs", "/tmp/d", "--seeds", "0", "--cache=/c"]
    assert command(argv) == ".venv/bin/python -m bench.experiment --models smollm2 --seeds 0"


def test_a_single_seed_is_never_called_better_or_worse() -> None:
    from bench.experiment_report import difference

    one, three = np.array([1.0]), np.array([2.0, 2.1, 1.9])
    assert difference(one, three, higher=False) == (-1.0, "one seed")
    assert difference(three, three + 1.0, higher=False)[1] == "better"
