"""The ASR check's short window: Whisper tiny.en on a 10 s window against its own 30 s.

The pipeline hears every clip through `builtin:whisper-tiny-en` (`[tts.asr]`); a clip
up to `short_window_s` long goes through the same weights with the position table cut
to that window (`saladpipe/assets/whisper_window.py`). This prints, on Piper clips of
WordNet glosses (cached under the saladpipe cache), seconds a clip through each route
(the full 30 s window is the bare baseline), their ratio, and the mean CER of each, so
the cost and what it does to the transcripts are measured in the same run. Walls are
the best of `--repeats`.

Usage: .venv/bin/python -m bench.asr [--clips 48] [--repeats 2] [--window 10]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import numpy as np

from bench.machine import machine
from saladpipe.data_schemas.config import AsrCheck
from saladpipe.data_schemas.layout import cache_dir
from saladpipe.training.speech import SAMPLE_RATE, ClipCache, speech_settings
from saladpipe.training.texts import sample_all, split_glosses
from saladpipe.tts.asr import Transcriber, character_error_rate


def clips(count: int, longest_s: float) -> tuple[list[str], list[np.ndarray]]:
    """Piper clips of glosses (seed 0) no longer than `longest_s`, and their texts."""
    train, _ = split_glosses()
    glosses = sample_all(train, 4 * count, np.random.default_rng(0))
    texts = [g.text for g in glosses]
    with ClipCache(cache_dir(), speech_settings("builtin:joe-us")) as cache:
        spoken, _ = cache.speak(texts, "glosses for the ASR bench")
    kept = [
        (t, c)
        for t, c in zip(texts, spoken, strict=True)
        if not isinstance(c, str) and c.size <= longest_s * SAMPLE_RATE
    ][:count]
    return [t for t, _ in kept], [c for _, c in kept]


def timed(asr: Transcriber, audio: Sequence[np.ndarray], repeats: int) -> tuple[float, list[str]]:
    """(best wall seconds over `repeats`, transcripts)."""
    walls, heard = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        heard = asr.transcribe(list(audio), SAMPLE_RATE)
        walls.append(time.perf_counter() - start)
    return min(walls), heard


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--window", type=int, default=10, help="short window, seconds")
    args = parser.parse_args(argv)
    texts, audio = clips(args.clips, args.window)
    seconds = np.array([c.size / SAMPLE_RATE for c in audio])
    print(f"machine: {machine()}")
    print(
        f"{len(audio)} Piper clips of glosses, {seconds.min():.1f} to {seconds.max():.1f} s "
        f"(mean {seconds.mean():.1f} s), Whisper tiny.en, batch 8, best of {args.repeats}"
    )
    rows = {}
    for name, window in (("30 s window (bare)", 30), (f"{args.window} s window", args.window)):
        asr = Transcriber(AsrCheck(model="builtin:whisper-tiny-en", short_window_s=window))
        wall, heard = timed(asr, audio, args.repeats)
        cer = float(
            np.mean([character_error_rate(t, h) for t, h in zip(texts, heard, strict=True)])
        )
        rows[window] = wall
        print(f"| {name} | {wall / len(audio):.3f} s a clip | mean CER {cer:.3f} |")
    print(f"30 s / {args.window} s window: {rows[30] / rows[args.window]:.2f}x faster")


if __name__ == "__main__":
    main(sys.argv[1:])
