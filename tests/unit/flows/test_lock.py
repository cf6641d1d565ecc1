"""The run-folder lock: a second process is refused with the holder named; death frees it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from saladpipe.flows.lock import RunLock, RunLockedError

_HOLD = """
import sys, time
from pathlib import Path
from saladpipe.flows.lock import RunLock
with RunLock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(60)
"""


def _hold_in_child(state: Path) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(state)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "locked"
    return child


def test_second_process_is_refused_with_the_holder_named(tmp_path: Path) -> None:
    child = _hold_in_child(tmp_path / "state")
    try:
        with pytest.raises(
            RunLockedError, match=rf"in use by another process \(pid {child.pid} on "
        ):
            RunLock(tmp_path / "state").__enter__()
    finally:
        child.kill()
        child.wait()


def test_a_killed_holder_releases_the_lock(tmp_path: Path) -> None:
    child = _hold_in_child(tmp_path / "state")
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    deadline = time.monotonic() + 5
    while True:
        try:
            with RunLock(tmp_path / "state"):
                break
        except RunLockedError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_lock_is_reentrant_after_release_in_one_process(tmp_path: Path) -> None:
    with RunLock(tmp_path / "state"):
        pass
    with RunLock(tmp_path / "state"):
        pass


def test_saladpipe_run_on_a_busy_folder_is_refused_and_touches_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from saladpipe.cli import main
    from tests.factories import small_wordnet_corpus, write_config, write_jsonl

    corpus = write_jsonl(tmp_path / "c.jsonl", small_wordnet_corpus(per_domain=2).to_pylist())
    run = tmp_path / "run"
    (run / "shards").mkdir(parents=True)
    (run / "shards" / "part-00000.parquet").write_bytes(b"another run's file")
    config = write_config(tmp_path / "c.toml", corpus, run)
    child = _hold_in_child(run / "state")
    try:
        assert main(["run", str(config), "--overwrite"]) == 1
    finally:
        child.kill()
        child.wait()
    assert f"in use by another process (pid {child.pid} on " in capsys.readouterr().err
    assert (run / "shards" / "part-00000.parquet").read_bytes() == b"another run's file"
