"""TTS throughput: the pipeline against bare engine calls, worker scaling, batched Coqui VITS.

Prints, in one run:
1. for Piper, eSpeak NG, Coqui VITS and Kokoro-82M (the builtin int8 model), seconds of
   audio per wall second through the pipeline (`SpeechService.speak`: one worker
   process, normalisation, splitting, checks, resampling to 16 kHz, FLAC) against the
   bare engine on the same texts in this process (goal: at least 0.95 of the bare rate);
2. Piper with 2 worker processes against 1 (goal: at least 1.7 times);
3. Coqui VITS at the model level (float32 and bfloat16 decoder, one text a call and
   padded batches of 2) against Coqui's own one-text-at-a-time API (`TTS.api.TTS.tts`)
   on the same texts (goal: the engine's default at least 1.5 times faster on this CPU).

The Coqui VITS model is built from Coqui's default VITS config (the size of the released
LJSpeech and VCTK models) with random weights: its audio is noise, its compute is that of
the real model. Its durations are scaled to about 0.065 s a character, like real speech.
Texts are WordNet glosses without digits or symbols, so normalisation leaves them as
they are and both sides speak the same words. Walls are the best of `--repeats` runs.

Usage: .venv/bin/python -m bench.tts [--texts 40] [--coqui-texts 16] [--kokoro-texts 8]
                                     [--repeats 2] [--parts piper,espeak,workers,coqui,kokoro]
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.machine import machine
from saladpipe.corpora.wordnet import build_wordnet_corpus
from saladpipe.data_schemas.config import ClipChecks, TTSSection, VoiceSpec
from saladpipe.tts import EngineOptions, SpeechService, SpokenText, TTSEngine, create_engine
from saladpipe.tts.coqui import CoquiEngine

CORES = len(os.sched_getaffinity(0))
# Random-weight Coqui audio is noise: let every clip through so both sides count the same audio.
NOISE_CHECKS = ClipChecks(
    min_seconds_per_char=0.0,
    max_seconds_per_char=10.0,
    min_rms_dbfs=-120.0,
    min_voiced_fraction=0.0,
    max_clipped_fraction=1.0,
)


def texts(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """Plain-word WordNet glosses of 60 to 160 characters (no digits or symbols)."""
    corpus = build_wordnet_corpus(per_domain=100, seed=seed).to_pylist()
    plain = [r for r in corpus if re.fullmatch(r"[A-Za-z ,.;:'()-]{60,160}", r["text"])]
    return [(r["id"], r["text"]) for r in plain[:n]]


def best(repeats: int, run: Callable[[], float]) -> tuple[float, float]:
    """(audio seconds, best wall seconds) over repeats."""
    walls, audio = [], 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        audio = run()
        walls.append(time.perf_counter() - start)
    return audio, min(walls)


def bare(engine: TTSEngine, items: list[tuple[str, str]], repeats: int) -> tuple[float, float]:
    """The engine's own calls, in the engine's batch size, in this process (text i seeded i)."""
    pieces = [text for _, text in items]
    seeds = list(range(len(pieces)))
    size = engine.batch_size

    def run() -> float:
        samples = 0
        for i in range(0, len(pieces), size):
            waves = engine.synthesize_batch(pieces[i : i + size], seeds[i : i + size])
            samples += sum(w.size for w in waves)
        return samples / engine.sample_rate

    return best(repeats, run)


def pipeline(tts: TTSSection, items: list[tuple[str, str]], repeats: int) -> tuple[float, float]:
    """SpeechService.speak, workers started (and warmed up) before the clock."""
    with SpeechService(tts, "flac", seed=0) as service:
        service.speak(items[:2])

        def run() -> float:
            spoken = service.speak(items)
            rejected = [s for s in spoken if not isinstance(s, SpokenText)]
            if rejected:
                raise SystemExit(f"bench texts were rejected: {rejected[:3]}")
            return sum(s.duration_s for s in spoken if isinstance(s, SpokenText))

        return best(repeats, run)


def line(name: str, audio: float, wall: float) -> str:
    return f"  {name:<44} {audio:8.1f} s audio {wall:8.2f} s wall {audio / wall:8.2f} s/s"


def compare(
    name: str, spec: VoiceSpec, tts: TTSSection, items: list[tuple[str, str]], repeats: int
) -> float:
    engine = create_engine(spec, EngineOptions("cpu", CORES))
    engine.synthesize_batch([items[0][1]], [0])  # warm up
    bare_audio, bare_wall = bare(engine, items, repeats)
    del engine
    pipe_audio, pipe_wall = pipeline(tts, items, repeats)
    ratio = (pipe_audio / pipe_wall) / (bare_audio / bare_wall)
    print(f"{name}: {len(items)} texts")
    print(line("bare engine calls, this process", bare_audio, bare_wall))
    print(line("pipeline, 1 worker process", pipe_audio, pipe_wall))
    print(f"  pipeline / bare rate: {ratio:.3f} (goal >= 0.95)")
    return ratio


def coqui_model(folder: Path) -> Path:
    """Coqui's default VITS (~36 M parameters) from its config, durations like real speech."""
    import torch
    from TTS.tts.configs.vits_config import VitsConfig
    from TTS.tts.models.vits import Vits, VitsArgs

    config = VitsConfig(
        use_phonemes=False,
        text_cleaner="english_cleaners",
        model_args=VitsArgs(init_discriminator=False),
    )
    torch.manual_seed(0)
    model = Vits(config).eval()
    probe = "A sentence of about sixty characters to measure its duration."
    ids = torch.LongTensor(model.tokenizer.text_to_ids(probe))[None]
    with torch.inference_mode():
        frames = model.inference(ids)["y_mask"].sum().item()
    config.model_args.length_scale = 0.065 * len(probe) / (frames * 256 / 22050)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict()}, folder / "model.pth")
    config.save_json(str(folder / "config.json"))
    return folder


def coqui_batched_vs_api(folder: Path, items: list[tuple[str, str]], repeats: int) -> None:
    """Coqui's API against our model-level path: each number format, one text a call and
    padded batches of 2, and the engine's own default on this machine."""
    from TTS.api import TTS

    pieces = [text for _, text in items]
    api = TTS(model_path=str(folder / "model.pth"), config_path=str(folder / "config.json"))
    api.tts(pieces[0])  # warm up
    _, api_wall = best(repeats, lambda: float(sum(len(api.tts(p)) for p in pieces)))
    print(f"Coqui VITS (default config, random weights): {len(pieces)} texts")
    print(f"  {'Coqui API, one text a call (TTS.tts, float32)':48s}{api_wall:8.2f} s wall")
    default = create_engine(
        VoiceSpec(engine="coqui", voice=str(folder)), EngineOptions("cpu", CORES)
    )
    assert isinstance(default, CoquiEngine)
    walls: dict[tuple[str, int], float] = {}
    for precision in ("float32", "bfloat16"):
        engine = create_engine(
            VoiceSpec(engine="coqui", voice=str(folder)),
            EngineOptions("cpu", CORES, CoquiEngine.Options(precision=precision)),
        )
        for size in (1, 2):
            engine.batch_size = size
            _, walls[precision, size] = bare(engine, items, repeats)
            label = f"ours, {precision}, {size} text(s) a call"
            print(f"  {label:48s}{walls[precision, size]:8.2f} s wall")
    ours = walls[default.precision, default.batch_size]
    print(
        f"  ours as configured by default here ({default.precision}, "
        f"{default.batch_size} a call) / Coqui API: {api_wall / ours:.2f}x (goal >= 1.5)"
    )
    for precision in ("float32", "bfloat16"):
        print(
            f"  batching itself, {precision} (1 vs 2 a call): "
            f"{walls[precision, 1] / walls[precision, 2]:.2f}x"
        )
    print(
        f"  bfloat16 decoder itself (1 a call): {walls['float32', 1] / walls['bfloat16', 1]:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=40)
    parser.add_argument("--coqui-texts", type=int, default=16)
    parser.add_argument("--kokoro-texts", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--parts",
        default="piper,espeak,workers,coqui,kokoro",
        help="comma-separated subset of: piper, espeak, workers, coqui, kokoro",
    )
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    items = texts(max(args.texts, args.coqui_texts, args.kokoro_texts) * 5)
    print(f"{machine()}; {CORES} CPU cores; no GPU measured")

    if "piper" in parts:
        piper = VoiceSpec(engine="piper")
        compare("Piper (joe, 22.05 kHz)", piper, TTSSection(), items[: args.texts], args.repeats)
    if "espeak" in parts:
        compare(
            "eSpeak NG (en-us)",
            VoiceSpec(engine="espeak"),
            TTSSection(engine="espeak"),
            items[: args.texts * 5],
            args.repeats,
        )
    if "workers" in parts:
        piper_workers(items[: args.texts], args.repeats)
    if "coqui" in parts:
        coqui(items[: args.coqui_texts], args.repeats)
    if "kokoro" in parts:
        kumo = VoiceSpec(engine="kokoro", speaker="jm_kumo")
        compare(
            "Kokoro-82M int8 (jm_kumo, 24 kHz)",
            kumo,
            TTSSection(engine="kokoro", voices=(kumo,)),
            items[: args.kokoro_texts],
            args.repeats,
        )


def piper_workers(piper_items: list[tuple[str, str]], repeats: int) -> None:
    """Piper in 1 worker (all cores as threads, or 1 thread) against 2 workers."""
    one, wall_one = pipeline(TTSSection(workers=1), piper_items, repeats)
    one_thread, wall_one_thread = pipeline(
        TTSSection(workers=1, threads_per_worker=1), piper_items, repeats
    )
    two, wall_two = pipeline(TTSSection(workers=2), piper_items, repeats)
    print(f"Piper worker processes: {len(piper_items)} texts")
    print(line(f"1 worker, {CORES} threads", one, wall_one))
    print(line("1 worker, 1 thread", one_thread, wall_one_thread))
    print(line(f"2 workers, {max(1, CORES // 2)} thread(s) each", two, wall_two))
    print(
        f"  2 workers / 1 worker: {(two / wall_two) / (one / wall_one):.2f}x (goal >= 1.7); "
        f"against 1 worker with 1 thread: {(two / wall_two) / (one_thread / wall_one_thread):.2f}x"
    )


def coqui(coqui_items: list[tuple[str, str]], repeats: int) -> None:
    """Coqui VITS through the pipeline against bare, then batched against Coqui's API."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = coqui_model(Path(tmp) / "vits")
        compare(
            "Coqui VITS (default config, random weights)",
            VoiceSpec(engine="coqui", voice=str(folder)),
            TTSSection(engine="coqui", voice=str(folder), checks=NOISE_CHECKS, device="cpu"),
            coqui_items,
            repeats,
        )
        coqui_batched_vs_api(folder, coqui_items, repeats)


if __name__ == "__main__":
    main()
