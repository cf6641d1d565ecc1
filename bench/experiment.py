"""Does SALAD's selection close the text–speech gap faster than random? The full experiment.

Builds (or reuses from the cache) the trained teacher and stage-I student of
`saladpipe models build`, then fine-tunes the stage-I student on synthetic speech
chosen by each arm (random, top_k, salad at γ = 1 and 5, salad in rounds with
re-scoring) at several budgets and seeds, and evaluates every fine-tune on held-out
glosses of all domains. Writes the results as JSON, the plot, and the generated block
of docs/experiments.md; prints the main table and SALAD's ratio to random.

Usage: .venv/bin/python -m bench.experiment [--reduced | --models smollm2]
        [--budgets 100,200,300] [--seeds 0,1,2] [--concentrations 3,6,9]
        [--device cpu|cuda|auto] [--cache DIR] [--docs DIR]
        [--from-results docs/experiments_results.json]
About 50 minutes on 2 CPU cores with an empty cache, most of it the stage-I
students of the sweep, speech synthesis and encoding each clip once;
--reduced runs every step at toy size in a few minutes. `--models smollm2` runs the
same grid on the SmolLM2-135M teacher and its student (about 5 hours on 2 CPU cores;
on a GPU machine: `--models smollm2 --device cuda`); its results go to
docs/experiments_smollm2.md. The grid options narrow it (one seed, one budget, ...).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path

from bench.experiment_arms import (
    REDUCED_EXPERIMENT,
    SMOLLM2_EXPERIMENT,
    ExperimentConfig,
    run_experiment,
)
from bench.experiment_report import (
    main_table,
    plot,
    results_markdown,
    setting_records,
    sweep_table,
    update_document,
)
from saladpipe.data_schemas.io import write_text
from saladpipe.data_schemas.layout import cache_dir

# The base name of each model set's results: <name>.md, <name>_results.json, the plot;
# and the title of <name>.md when it is first written.
DOCUMENTS = {"trained": "experiments", "smollm2": "experiments_smollm2"}
TITLES = {"trained": "Experiments", "smollm2": "Experiment on the SmolLM2 models"}


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of integers: {text}"
        ) from None


def grid(args: argparse.Namespace) -> ExperimentConfig:
    """The experiment the options ask for: a model set, narrowed by the grid options."""
    if args.reduced:
        config = REDUCED_EXPERIMENT
    else:
        config = SMOLLM2_EXPERIMENT if args.models == "smollm2" else ExperimentConfig()
    narrowed = {
        name: value
        for name in ("budgets", "seeds", "concentrations")
        if (value := getattr(args, name)) is not None
    }
    try:
        return dataclasses.replace(config, **narrowed)
    except ValueError as exc:
        raise SystemExit(f"bench.experiment: {exc}") from None


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reduced", action="store_true", help="toy sizes (the CI test's)")
    parser.add_argument(
        "--models",
        choices=sorted(DOCUMENTS),
        default="trained",
        help="trained: the default build's small models; smollm2: the SmolLM2-135M teacher "
        "and its student (--recipe smollm2)",
    )
    parser.add_argument("--budgets", type=_ints, help="e.g. 100,200,300")
    parser.add_argument("--seeds", type=_ints, help="e.g. 0,1,2")
    parser.add_argument(
        "--concentrations", type=_ints, help="heard domains of each setting, e.g. 3,6,9"
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (models and training)")
    parser.add_argument("--cache", type=Path, default=None, help="default: the saladpipe cache")
    parser.add_argument("--docs", type=Path, default=Path("docs"), help="where results go")
    parser.add_argument(
        "--from-results",
        type=Path,
        default=None,
        help="re-render tables and plot from an earlier results JSON (--reduced if it was)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    config = grid(args)
    name = DOCUMENTS[args.models]
    plot_name = f"{name}_misalignment.png"
    args.docs.mkdir(parents=True, exist_ok=True)
    if args.from_results is not None:
        results = json.loads(args.from_results.read_text(encoding="utf-8"))
    else:
        results = asdict(run_experiment(config, args.cache or cache_dir(), args.device))
        results["command"] = command(argv)
        write_text(json.dumps(results, indent=1) + "\n", args.docs / f"{name}_results.json")
    first = results["settings"][0]
    records = setting_records(results, first["heard"])
    plot(records, first["stage1"], args.docs / plot_name)
    block = results_markdown(results, plot_name, results.get("command", command(argv)))
    update_document(args.docs / f"{name}.md", block, TITLES[args.models])
    budget = max(int(r["budget"]) for r in records)
    print(main_table(records, first["stage1"], budget))
    print(sweep_table(results))
    means = {}
    for arm in ("random", "salad-g5"):
        values = [r["misalignment"] for r in records if r["arm"] == arm and r["budget"] == budget]
        means[arm] = sum(values) / len(values)
    print(
        f"held-out misalignment at {budget} texts: salad-g5 / random = "
        f"{means['salad-g5'] / means['random']:.3f} (below 1: SALAD closes more of the gap); "
        f"{results['seconds'] / 60:.1f} minutes"
    )


def command(argv: list[str]) -> str:
    """The command line that made the results, for the document (where they go left out)."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--docs", "--cache", "--from-results"):
            skip = True
        elif not arg.startswith(("--docs=", "--cache=", "--from-results=")):
            kept.append(arg)
    return " ".join([".venv/bin/python -m bench.experiment", *kept])


if __name__ == "__main__":
    main(sys.argv[1:])
