"""Resume and reproducibility of real runs of a reduced embedded default.

What a user relies on, asserted on bytes rather than on the final state alone:
- a finished run, run again, runs no stage body and changes no byte (nor an mtime);
- two fresh runs of the same config and seed write byte-identical tables and audio;
- a run killed with SIGKILL at any moment and resumed keeps, byte for byte, every file
  that was complete before the kill (completion records included: no finished task is
  redone), and ends with the same selection and shards as a run never killed.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from saladpipe.data_schemas.layout import RunLayout
from saladpipe.flows.executor import KEPT
from saladpipe.shards.verify import verify_run

pytestmark = pytest.mark.e2e

# The embedded default (examples/quickstart.toml), reduced to a minute of work: 60
# glosses of its 12 domains, 4 clusters, the placeholder models (its trained ones take
# minutes to build), 12 texts selected into shards of 4.
REDUCED = [
    "corpus.builtin_texts_per_domain=5",
    "corpus.shard_rows=20",
    "cluster.k=4",
    "probe.per_cluster=3",
    "probe.shard_rows=4",
    'models.teacher.source="builtin:placeholder-teacher"',
    'models.student.source="builtin:placeholder-student"',
    "select.budget_texts=12",
    "output.shard_rows=4",
]
# Files that say who ran when, not what was made: the Prefect database and log, the
# folder lock, and the digest cache (state/digests: a file rewritten with the same
# bytes gets a new entry; what it stands for is checked through the records).
VOLATILE = ("state/prefect/", "state/run.lock", "state/digests/")
# Scratch files, deleted by design once their consumer has finished.
SCRATCH = re.compile(r"clusters/preferences-\d+\.npz")
# The tables and audio a run makes (the ledger's JSON names its folder, so it differs).
PRODUCTS = ("corpus", "embeddings", "clusters", "probes", "scores", "selection", "shards")

Snapshot = dict[str, tuple[str, int]]


def _command(run_dir: Path) -> list[str]:
    sets = [arg for item in REDUCED for arg in ("--set", item)]
    return [sys.executable, "-m", "saladpipe.cli", "run", "--output-dir", str(run_dir), *sets]


def _start(run_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            _command(run_dir),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed as a whole
        )


def _run(run_dir: Path, log: Path) -> float:
    """Run to the end; the wall time it took."""
    began = time.monotonic()
    process = _start(run_dir, log)
    assert process.wait(timeout=600) == 0, log.read_text()[-3000:]
    return time.monotonic() - began


def snapshot(root: Path) -> Snapshot:
    """sha256 and mtime of every finished file a run made, but for `VOLATILE` ones."""
    files = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        name = path.relative_to(root).as_posix()
        temporary = path.name.startswith(".") and ".tmp-" in path.name  # a killed writer's
        if not name.startswith(VOLATILE) and not temporary:
            files[name] = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    return files


def _products(files: Snapshot) -> dict[str, str]:
    return {name: sha for name, (sha, _) in files.items() if name.startswith(PRODUCTS)}


@dataclass(frozen=True)
class Reference:
    """A run never killed, and what it made."""

    root: Path
    files: Snapshot
    seconds: float


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    folder = tmp_path_factory.mktemp("reference")
    seconds = _run(folder / "run", folder / "run.log")
    return Reference(folder / "run", snapshot(folder / "run"), seconds)


def test_a_finished_run_runs_nothing_and_changes_no_byte(
    reference: Reference, tmp_path: Path
) -> None:
    """README: "Run again, it resumes: a finished run does nothing more"."""
    log = tmp_path / "again.log"
    _run(reference.root, log)
    assert snapshot(reference.root) == reference.files  # bytes and mtimes
    text = log.read_text()
    ran = set(re.findall(r"Task run '([^']+)' - Finished in state", text))
    kept = set(re.findall(rf"Task run '([^']+)' - [a-z-]+: {re.escape(KEPT)}", text))
    assert ran and kept
    assert ran == kept  # every task run of the second run kept what the first one made
    assert f"cluster-preferences-shard: not needed: assign-balanced {KEPT}" in text
    # Scratch files were deleted once the stage that read them was recorded.
    assert not any(SCRATCH.fullmatch(name) for name in reference.files)


def test_two_fresh_runs_write_identical_tables_and_audio(
    reference: Reference, tmp_path: Path
) -> None:
    """docs/selection.md: the same config and seed give the same picks, bit for bit; the
    Piper clips (probes and shards) are identical too."""
    _run(tmp_path / "run", tmp_path / "run.log")
    again = _products(snapshot(tmp_path / "run"))
    expected = _products(reference.files)
    assert any(name.startswith("shards/") for name in expected)
    assert any(name.startswith("probes/clips-") for name in expected)
    assert again == expected


def _kill_when(process: subprocess.Popen[bytes], ready: Callable[[], bool], delay_s: float) -> None:
    """SIGKILL the run `delay_s` after `ready()` first holds; it must still be running."""
    deadline = time.monotonic() + 600
    while not ready():
        assert process.poll() is None, "the run ended before the moment to kill it"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(delay_s)
    assert process.poll() is None, "the run ended before the moment to kill it"
    os.killpg(process.pid, signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL


def _servers_of(state: Path) -> list[int]:
    """Pids of live Prefect servers whose database is in `state` (none may outlive a run)."""
    home = f"PREFECT_HOME={state / 'prefect'}".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if home in (proc / "environ").read_bytes().split(b"\0"):
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


def _files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.parquet")) if folder.is_dir() else []


def test_sigkill_at_any_moment_then_resume_keeps_every_finished_file(
    reference: Reference, tmp_path: Path
) -> None:
    rng = random.Random(7)
    layout = RunLayout(tmp_path / "run")
    log = tmp_path / "attempts.log"
    began = [0.0]

    def after(seconds: float) -> Callable[[], bool]:
        return lambda: time.monotonic() - began[0] >= seconds

    moments: list[tuple[str, Callable[[], bool], float]] = [
        ("at a random moment", after(rng.uniform(0.2, 0.6) * reference.seconds), 0.0),
        ("while scoring", lambda: bool(_files(layout.root / "scores")), rng.uniform(0.0, 0.3)),
        ("while synthesizing", lambda: layout.selection(0).is_file(), rng.uniform(0.0, 1.0)),
        ("while writing shards", lambda: bool(_files(layout.shards_dir)), rng.uniform(0.0, 0.05)),
    ]
    finished_before: Snapshot = {}
    for _, ready, delay in moments:
        began[0] = time.monotonic()
        process = _start(layout.root, log)
        _kill_when(process, ready, delay)
        deadline = time.monotonic() + 30  # the server stops with its run (PR_SET_PDEATHSIG)
        while _servers_of(layout.state) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _servers_of(layout.state) == []
        assert not layout.manifest.exists()
        # A file under its final name is complete (written under a temporary name, then
        # renamed); each must survive every later attempt byte for byte.
        now = snapshot(layout.root)
        for name, (sha, _) in finished_before.items():
            assert SCRATCH.fullmatch(name) or now.get(name, ("gone",))[0] == sha, name
        finished_before |= {n: v for n, v in now.items() if not SCRATCH.fullmatch(n)}

    _run(layout.root, log)
    final = snapshot(layout.root)
    for name, (sha, _) in finished_before.items():
        assert final.get(name, ("gone",))[0] == sha, f"{name} was redone or lost"
    assert any(name.startswith("state/done/") for name in finished_before)
    # The same selection, scores and shards as the run that was never killed.
    assert _products(final) == _products(reference.files)
    assert verify_run(layout.root) == []
