"""`saladpipe verify` on a real run's folder: every kind of damage named, a sound folder passing."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from saladpipe.shards.verify import verify_run
from tests.factories import E2ERun


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete", "stray"])
def test_verify_names_each_problem(damage: str, e2e_run: E2ERun, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(e2e_run.run_dir, run, ignore=shutil.ignore_patterns("state"))
    assert verify_run(run) == []
    shard = sorted((run / "shards").glob("*.parquet"))[0]
    relative = str(shard.relative_to(run))
    if damage == "truncate":
        shard.write_bytes(shard.read_bytes()[:-100])
    elif damage == "flip":
        data = bytearray(shard.read_bytes())
        data[len(data) // 2] ^= 0xFF
        shard.write_bytes(bytes(data))
    elif damage == "delete":
        shard.unlink()
    else:
        (run / "shards" / "part-99999.parquet").write_bytes(b"stray")
    problems = verify_run(run)
    expected = {
        "truncate": ("truncated", relative),
        "flip": ("altered", relative),
        "delete": ("missing", relative),
        "stray": ("extra", "shards/part-99999.parquet"),
    }[damage]
    assert [(p.kind, p.path) for p in problems] == [expected]
    proc = subprocess.run(
        [sys.executable, "-m", "saladpipe.cli", "verify", str(run)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert expected[0] in proc.stdout and expected[1] in proc.stdout


def test_verify_passes_on_a_finished_run_and_fails_without_manifest(
    e2e_run: E2ERun, tmp_path: Path
) -> None:
    assert verify_run(e2e_run.run_dir) == []
    assert [p.kind for p in verify_run(tmp_path)] == ["no_manifest"]
