"""bench/tts.py's Kokoro row at toy size: the pipeline and the bare calls speak the same
audio and the ratio prints, with the machine it held on."""

from __future__ import annotations

import re
from pathlib import Path

from tests.integration.bench import run_bench


def test_the_tts_bench_compares_kokoro_through_the_pipeline_with_bare_calls(
    tmp_path: Path,
) -> None:
    args = ("--parts", "kokoro", "--kokoro-texts", "2", "--repeats", "1")
    out = run_bench("bench.tts", tmp_path / "cache", *args).stdout
    assert re.search(r"; flags: .+; torch .+ CPU cores", out)
    assert "Kokoro-82M int8 (jm_kumo, 24 kHz): 2 texts" in out
    audio = re.findall(r"^  (?:bare|pipeline).* ([0-9.]+) s audio", out, re.MULTILINE)
    assert len(audio) == 2 and float(audio[0]) > 5 and abs(float(audio[0]) - float(audio[1])) < 0.2
    assert re.search(r"^  pipeline / bare rate: [0-9.]+ \(goal >= 0.95\)$", out, re.MULTILINE)
