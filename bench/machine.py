"""The machine a benchmark ran on, in one line: CPU model, the vector flags torch's CPU
kernels may use, torch's version and threads (figures hold only where these match)."""

from __future__ import annotations

import platform
from pathlib import Path

import torch

FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile")


def machine() -> str:
    """CPU model and the vector flags torch's CPU kernels may use (from /proc/cpuinfo)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        lines = Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    for line in lines:
        if line.startswith("model name") and model in ("", platform.machine()):
            model = line.split(":", 1)[1].strip()
        elif line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
    present = ", ".join(f for f in FLAGS if f in flags) or "none of " + ", ".join(FLAGS)
    return (
        f"{model}; flags: {present}; torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
