"""Kill a real run with SIGKILL while it scores, synthesizes and writes shards; resume
each time; at the end every selected text is in the shards exactly once or in
quarantine, `verify` passes, and the resumed attempts redid nothing that had finished."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from saladpipe.data_schemas.layout import RunLayout
from saladpipe.pipeline.shards.verify import verify_run
from tests.factories import small_wordnet_corpus, write_config, write_jsonl

pytestmark = pytest.mark.e2e

SMALL = {
    "corpus": {"shard_rows": 30},
    "cluster": {"k": 4, "iterations": 5},
    "probe": {"per_cluster": 3, "shard_rows": 3},
    "select": {"strategy": "salad", "gamma": 5.0, "budget_texts": 18},
    "output": {"shard_rows": 3},
}


def _start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "saladpipe.cli", "run", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed as a whole
        )


def _kill_when(process: subprocess.Popen[bytes], ready: Callable[[], bool], delay_s: float) -> None:
    """SIGKILL the run `delay_s` after `ready()` first holds; it must still be running."""
    deadline = time.monotonic() + 600
    while not ready():
        assert process.poll() is None, "the run ended before the moment to kill it"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(delay_s)
    assert process.poll() is None, "the run ended before the moment to kill it"
    os.kill(process.pid, signal.SIGKILL)
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


def test_sigkill_at_random_moments_then_resume_loses_and_repeats_nothing(tmp_path: Path) -> None:
    rng = random.Random(7)
    keep = {"noun.animal", "noun.food", "verb.motion", "noun.artifact"}
    rows = [r for r in small_wordnet_corpus(per_domain=15).to_pylist() if r["domain"] in keep]
    corpus = write_jsonl(tmp_path / "corpus.jsonl", rows)
    layout = RunLayout(tmp_path / "run")
    config = write_config(tmp_path / "run.toml", corpus, layout.root, **SMALL)
    log = tmp_path / "attempts.log"
    moments: list[tuple[str, Callable[[], bool], float]] = [
        ("scoring", lambda: bool(_files(layout.root / "scores")), rng.uniform(0.0, 0.3)),
        (
            "synthesis",
            lambda: layout.selection(0).is_file(),
            rng.uniform(0.0, 1.0),
        ),
        ("shard writing", lambda: bool(_files(layout.shards_dir)), rng.uniform(0.0, 0.05)),
    ]
    kept_before_last: dict[Path, int] = {}
    for _, ready, delay in moments:
        process = _start(config, log)
        _kill_when(process, ready, delay)
        deadline = time.monotonic() + 30  # the server stops with its run (PR_SET_PDEATHSIG)
        while _servers_of(layout.state) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _servers_of(layout.state) == []
        assert not layout.manifest.exists()
        kept_before_last = {p: p.stat().st_mtime_ns for p in _files(layout.root / "embeddings")}

    final = _start(config, log)
    assert final.wait(timeout=600) == 0, log.read_text()[-3000:]
    last_attempt = log.read_text().rsplit("resuming the unfinished", 1)[-1]

    selected = pq.read_table(layout.selection(0)).column("text_id").to_pylist()
    spoken = [t for p in _files(layout.shards_dir) for t in pq.read_table(p)["text_id"].to_pylist()]
    quarantined = [
        t
        for p in sorted(layout.quarantine_dir.glob("tts-*.parquet"))
        for t in pq.read_table(p)["text_id"].to_pylist()
    ]
    assert len(spoken) == len(set(spoken)), "a text is in the shards twice"
    assert sorted(spoken + quarantined) == sorted(selected) and len(selected) == 18
    assert verify_run(layout.root) == []
    # What had finished before the last kill was kept, not redone.
    assert kept_before_last and all(
        p.stat().st_mtime_ns == mtime for p, mtime in kept_before_last.items()
    )
    assert last_attempt.count("embed-shard: finished earlier on the same inputs; kept") == len(
        kept_before_last
    )
    assert "ingest: finished earlier on the same inputs; kept" in last_attempt
