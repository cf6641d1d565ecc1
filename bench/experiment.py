"""Does SALAD's selection close the text–speech gap faster than random? The full experiment.

Builds (or reuses from the cache) the trained teacher and stage-I student of
`saladpipe models build`, then fine-tunes the stage-I student on synthetic speech
chosen by each arm (random, top_k, salad at γ = 1 and 5, salad in rounds with
re-scoring) at several budgets and seeds, and evaluates every fine-tune on held-out
glosses of all domains. Writes the results as JSON, the plot, and the generated block
of docs/experiments.md; prints the main table and SALAD's ratio to random.

Usage: .venv/bin/python -m bench.experiment [--reduced] [--cache DIR] [--docs DIR]
                                            [--from-results docs/experiments_results.json]
About 50 minutes on 2 CPU cores with an empty cache, most of it the stage-I
students of the sweep, speech synthesis and encoding each clip once;
--reduced runs every step at toy size in a few minutes.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path

from bench.experiment_arms import (
    REDUCED_EXPERIMENT,
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

PLOT_NAME = "experiments_misalignment.png"
RESULTS_NAME = "experiments_results.json"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reduced", action="store_true", help="toy sizes (the CI test's)")
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
    config = REDUCED_EXPERIMENT if args.reduced else ExperimentConfig()
    args.docs.mkdir(parents=True, exist_ok=True)
    if args.from_results is not None:
        results = json.loads(args.from_results.read_text(encoding="utf-8"))
    else:
        results = asdict(run_experiment(config, args.cache or cache_dir()))
        write_text(json.dumps(results, indent=1) + "\n", args.docs / RESULTS_NAME)
    first = results["settings"][0]
    records = setting_records(results, first["heard"])
    plot(records, first["stage1"], args.docs / PLOT_NAME)
    command = ".venv/bin/python -m bench.experiment" + (" --reduced" if args.reduced else "")
    block = results_markdown(results, PLOT_NAME, command)
    update_document(args.docs / "experiments.md", block, "Experiments")
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


if __name__ == "__main__":
    main(sys.argv[1:])
