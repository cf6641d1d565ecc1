"""A whole `saladpipe run` of an example config: wall time and peak memory, against the
embedded default run the same way in the same invocation.

    .venv/bin/python -m bench.example_run [--config examples/smollm2.toml]
                                          [--baseline examples/quickstart.toml]

Each config runs once, as a user's run after the first: its models are built (and the
builtin converted) before the clock starts, so the figure is the run's own cost. Each
run writes into a new temporary folder. Memory is sampled every 0.2 s over the run's
whole process tree (the CLI, its Prefect server, its speech workers): the peak of the
largest single process and the peak of the tree's sum of resident memory.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench.machine import machine
from saladpipe.cli.preflight import trained_models
from saladpipe.data_schemas.config import load_config
from saladpipe.models.builtin import SMOLLM2, builtin_names

SAMPLE_S = 0.2


@dataclass(frozen=True)
class RunCost:
    config: Path
    seconds: float
    peak_process_mb: float
    peak_tree_mb: float
    summary: str


def prepare(config: Path) -> None:
    """Build the config's trained builtins and convert its SmolLM2 before the clock starts."""
    loaded = load_config(config)
    trained_models(loaded)
    if SMOLLM2 in builtin_names(loaded.models):
        from saladpipe.assets.smollm2 import ensure_smollm2

        ensure_smollm2()


def _tree(root: int) -> list[int]:
    """The process `root` and every descendant alive now."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run(config: Path) -> RunCost:
    """`saladpipe run CONFIG` in a new folder, timed and sampled."""
    prepare(config)
    with tempfile.TemporaryDirectory(prefix="example-run-") as folder:
        command = [sys.executable, "-m", "saladpipe.cli", "run", str(config)]
        command += ["--output-dir", str(Path(folder) / "run")]
        peaks = {"process": 0.0, "tree": 0.0}
        started = time.monotonic()
        child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        done = threading.Event()

        def sample() -> None:
            while not done.wait(SAMPLE_S):
                sizes = [_rss_mb(pid) for pid in _tree(child.pid)]
                peaks["process"] = max(peaks["process"], max(sizes, default=0.0))
                peaks["tree"] = max(peaks["tree"], sum(sizes))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        out, _ = child.communicate()
        seconds = time.monotonic() - started
        done.set()
        sampler.join()
        if child.returncode != 0:
            raise SystemExit(f"saladpipe run {config} failed with exit {child.returncode}")
    summary = next((line for line in out.splitlines() if line.startswith("run ")), "")
    return RunCost(config, seconds, peaks["process"], peaks["tree"], summary)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("examples/smollm2.toml"))
    parser.add_argument("--baseline", type=Path, default=Path("examples/quickstart.toml"))
    args = parser.parse_args(argv)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    print(f"machine: {machine()}")
    results = [run(args.baseline), run(args.config)]
    for cost in results:
        print(
            f"{cost.config}: {cost.seconds:.0f} s, peak {cost.peak_process_mb:.0f} MB in one "
            f"process, {cost.peak_tree_mb:.0f} MB over the process tree; {cost.summary}"
        )
    base, measured = results
    print(
        f"{measured.config} / {base.config}: time {measured.seconds / base.seconds:.2f}x, "
        f"peak process memory {measured.peak_process_mb / base.peak_process_mb:.2f}x"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
