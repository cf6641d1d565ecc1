"""Helpers of the bench tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests import REPO


def run_bench(module: str, cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m module args` from the repository, its models and clips under `cache`;
    must succeed."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env={**os.environ, "SALADPIPE_CACHE": str(cache)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done
