"""bench/asr.py at toy size: both windows transcribe the same clips and the ratio prints."""

from __future__ import annotations

import re
from pathlib import Path

from tests.integration.bench import run_bench


def test_asr_bench_compares_the_short_window_with_the_full_one(tmp_path: Path) -> None:
    done = run_bench("bench.asr", tmp_path / "cache", "--clips", "3", "--repeats", "1")
    out = done.stdout
    assert re.search(r"^machine: .+; flags: .+; torch ", out, re.MULTILINE)
    assert "3 Piper clips of glosses" in out
    rows = re.findall(
        r"^\| (30|10) s window.*\| ([0-9.]+) s a clip \| mean CER ([0-9.]+) \|$", out, re.MULTILINE
    )
    assert [r[0] for r in rows] == ["30", "10"]
    # Real speech through real Whisper: both routes understand most of it.
    assert all(float(cer) < 0.5 for _, _, cer in rows)
    assert re.search(r"^30 s / 10 s window: [0-9.]+x faster$", out, re.MULTILINE)
