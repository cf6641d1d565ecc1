"""What Prefect costs a round, and what a second Dask worker buys, in one run.

Five runs of the same reduced embedded default, each in a fresh process (imports,
model loads and TTS worker start-up included, as in `saladpipe run`), all recording
to one local Prefect server started here (its start-up is printed apart):

- direct: the round-0 stages called one after another in this process
  (`InProcessExecutor`: the same stage list and code as the flow's tasks), no Prefect;
- prefect-1: the `saladpipe-round` flow with a one-thread task runner (THREAD_WORKERS = 1
  in that process): Prefect's own cost (task runs, states, logs and artifacts sent to
  the server), shards one at a time as in `direct`;
- prefect: the flow as `saladpipe run` runs it (thread task runner, two threads);
- dask-1, dask-2: the flow on a local Dask cluster of one or two single-threaded worker
  processes. Per-stage times come from the task runs' start and end times on the
  server: a stage's span is its first shard's start to its last shard's end.

The reduction (DEFAULT_SETS) keeps every stage but cuts the corpus to 480 texts and
each per-shard stage to 4 shards, so that a second worker has work to share, and the
whole script to about 10 minutes on 2 cores.

Usage: .venv/bin/python -m bench.orchestration [--set KEY=VALUE ...] [--skip-dask]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

DEFAULT_SETS = [
    "corpus.builtin_texts_per_domain=40",  # 12 domains: 480 texts
    "corpus.shard_rows=120",  # 4 corpus shards
    "cluster.k=12",
    "probe.per_cluster=3",  # 36 probes
    "probe.shard_rows=9",  # 4 probe shards
    "select.budget_texts=36",
    "output.shard_rows=9",  # 4 output shards
]
# The stages that spread over workers and keep a core busy (one task per shard).
CPU_STAGES = ("embed-shard", "synthesize-probes", "score-probes", "synthesize-shard")
MODES = {
    "direct": [],
    "prefect-1": [],
    "prefect": [],
    "dask-1": ['prefect.task_runner="dask"', "prefect.dask_workers=1"],
    "dask-2": ['prefect.task_runner="dask"', "prefect.dask_workers=2"],
}


def run_direct(config: Any) -> dict[str, float]:
    """Round 0's stages called in turn in this process, without Prefect: exactly the code
    the flow's tasks run (the same stage list, another executor), timed per stage."""
    from saladpipe.cli.preflight import trained_models
    from saladpipe.data_schemas.layout import RunLayout
    from saladpipe.flows import resources
    from saladpipe.flows.executor import InProcessExecutor
    from saladpipe.flows.round import round_stages

    layout = RunLayout(config.output_path())
    layout.state.mkdir(parents=True, exist_ok=True)
    run = InProcessExecutor(layout)
    try:
        round_stages(run, config, trained_models(config), None)
    finally:
        resources.close_all()
    return run.seconds


def stage_spans(flow_run_id: str) -> dict[str, float]:
    """Per task name, seconds from its first task run's start to its last one's end."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[uuid.UUID(flow_run_id)]))
        )
    spans: dict[str, tuple[float, float]] = {}
    for run in runs:
        if run.start_time is None or run.end_time is None:
            continue
        name = run.name.rsplit("-", 1)[0]
        start, end = run.start_time.timestamp(), run.end_time.timestamp()
        first, last = spans.get(name, (start, end))
        spans[name] = (min(first, start), max(last, end))
    return {name: last - first for name, (first, last) in spans.items()}


def one(mode: str, sets: list[str], output_dir: Path) -> dict[str, Any]:
    """One measured run in this process; what the parent prints."""
    import_start = time.perf_counter()
    from saladpipe.cli import default_config
    from saladpipe.cli.preflight import trained_models
    from saladpipe.flows import runners
    from saladpipe.flows.launch import run_round

    config = default_config([*sets, *MODES[mode], f'run.output_dir="{output_dir}"'])
    imported = time.perf_counter() - import_start
    start = time.perf_counter()
    if mode == "direct":
        stages = run_direct(config)
        wall = time.perf_counter() - start
    else:
        if mode == "prefect-1":
            runners.THREAD_WORKERS = 1
        result = run_round(config, 0, trained_models(config))
        wall = time.perf_counter() - start
        stages = stage_spans(str(result.manifest.prefect_flow_run_id))
    return {"mode": mode, "import_s": imported, "wall_s": wall, "stages": stages}


def warm_caches(sets: list[str], output_dir: Path) -> None:
    """Build the builtin corpus and models once, so that no measured run pays for it."""
    from saladpipe.cli import default_config
    from saladpipe.cli.preflight import trained_models
    from saladpipe.data_schemas.layout import cache_dir
    from saladpipe.pipeline import ingest

    config = default_config([*sets, f'run.output_dir="{output_dir}"'])
    ingest.corpus_location(config.corpus, config.run.seed, cache_dir())
    trained_models(config)


def measure(mode: str, sets: list[str], root: Path, env: dict[str, str]) -> dict[str, Any]:
    command = [sys.executable, __file__, "--one", mode, "--output-dir", str(root / mode)]
    command += [arg for s in sets for arg in ("--set", s)]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{mode} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - start
    return result


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", action="append", default=None, metavar="KEY=VALUE")
    parser.add_argument("--skip-dask", action="store_true")
    parser.add_argument("--one", choices=sorted(MODES), help=argparse.SUPPRESS)
    parser.add_argument("--output-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sets = DEFAULT_SETS if args.set is None else args.set
    if args.one:
        print(json.dumps(one(args.one, sets, args.output_dir)))
        return

    from saladpipe.flows.server import local_prefect_server

    print(f"config: the embedded default with --set {' --set '.join(sets)}")
    print(f"load average before: {os.getloadavg()[0]:.2f} (1 min), cores: {os.cpu_count()}")
    modes = [m for m in MODES if not (args.skip_dask and m.startswith("dask"))]
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-orchestration-") as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        with local_prefect_server(root / "server") as url:
            print(f"local Prefect server start-up: {time.perf_counter() - start:.1f} s")
            warm_caches(sets, root / "warm")
            env = {**os.environ, "PREFECT_API_URL": url}
            for mode in modes:
                results[mode] = measure(mode, sets, root, env)
                r = results[mode]
                print(
                    f"{mode:>9}: round {r['wall_s']:6.1f} s (imports {r['import_s']:.1f} s, "
                    f"process {r['process_s']:.1f} s)",
                    flush=True,
                )
    direct = results["direct"]["wall_s"]
    for mode, meaning in (
        ("prefect-1", "Prefect's own cost, goal under +10 %"),
        ("prefect", "the default, two shards at a time"),
    ):
        ratio = results[mode]["wall_s"] / direct
        print(f"{mode} / direct: {ratio:.3f} ({100 * (ratio - 1):+.1f} %: {meaning})")
    print(f"load average after: {os.getloadavg()[0]:.2f} (1 min)")
    print()
    print("| stage | " + " | ".join(modes) + " |")
    print("|---|" + "---:|" * len(modes))
    for stage in CPU_STAGES:
        cells = [f"{results[m]['stages'].get(stage, float('nan')):.1f}" for m in modes]
        print(f"| {stage} | " + " | ".join(cells) + " |")
    if not args.skip_dask:
        one_worker = sum(results["dask-1"]["stages"][s] for s in CPU_STAGES)
        two_workers = sum(results["dask-2"]["stages"][s] for s in CPU_STAGES)
        print(
            f"CPU-bound stages: dask-1 {one_worker:.1f} s, dask-2 {two_workers:.1f} s, "
            f"speed-up {one_worker / two_workers:.2f}x"
        )
        for stage in CPU_STAGES:
            a, b = results["dask-1"]["stages"][stage], results["dask-2"]["stages"][stage]
            print(f"  {stage}: {a / b:.2f}x")


if __name__ == "__main__":
    main(sys.argv[1:])
