"""Scoring throughput: the pipeline's scorer against a bare batched loop and a per-sample loop.

    .venv/bin/python -m bench.score [--texts 192] [--repeats 3] [--device auto]
                                    [--models toy|smollm2]

With `--models toy` (the default) it builds a teacher (GPT-2: 4 layers, 256 wide, a
byte-level BPE vocabulary of about 50k tokens (GPT-2's size) trained on WordNet glosses)
and a speech-adapted student (tiny wav2vec2, frame-stacking adapter, a perturbed copy of
the teacher) from configs, and scores
texts of mixed lengths (1, 2, 4 or 8 glosses; the spoken prefix is half the words,
stood in for by noise of 0.3 s a word). With `--models smollm2` the teacher is the builtin
SmolLM2-135M-Instruct (134.5 M parameters, a 49 152-token vocabulary) and the student
the recipe's shape around it: Whisper tiny.en's encoder, a new frame-stacking adapter
and a copy of the LM (untrained: throughput and memory are those of a trained one).
Three ways, same items, same models:

- pipeline: `DistillationScorer.score` from raw items (tokenizing, checking,
  sorting, token-budget batching, chunked KL, results to Python);
- bare: the two models' own forward passes on the pipeline's batches, with the
  logits kept only at the continuation's positions and the same KL function on the
  whole batch at once (no chunks, no bookkeeping);
- per-sample: one text at a time with full logits, as a first research script would.

Prints tokens/s (scored continuation tokens per second, best of --repeats), the
ratios, the largest disagreement of the scores, and each way's peak memory above
what the process held before it (RSS on CPU, allocator peak on CUDA).
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from transformers import (
    GPT2LMHeadModel,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2Model,
)

from bench.machine import machine
from saladpipe.corpora.wordnet import build_wordnet_corpus
from saladpipe.data_schemas.tables import strings
from saladpipe.models import (
    AdapterConfig,
    FrameStackAdapter,
    SpeechAdaptedLM,
    Teacher,
    resolve_device,
)
from saladpipe.models.bpe import SPECIAL_TOKEN, train_bpe_tokenizer
from saladpipe.models.configs import gpt2_config, wav2vec2_config
from saladpipe.models.distillation import (
    DistillationScorer,
    PreparedRow,
    ScoreItem,
    kl_teacher_student,
    plan_batches,
)

RATE = 16000
SECONDS_PER_WORD = 0.3


def build_models(texts: list[str], device: torch.device) -> tuple[Teacher, SpeechAdaptedLM]:
    tokenizer = train_bpe_tokenizer(texts, 50257, 1024)
    torch.manual_seed(0)
    special = tokenizer.convert_tokens_to_ids(SPECIAL_TOKEN)
    assert isinstance(special, int)  # one token in, one id out
    config = gpt2_config(len(tokenizer), special, width=256, layers=4, heads=4, context=1024)
    lm = GPT2LMHeadModel(config).eval()
    encoder = Wav2Vec2Model(wav2vec2_config()).eval()
    features = Wav2Vec2FeatureExtractor(sampling_rate=RATE, return_attention_mask=True)
    adapter = FrameStackAdapter(
        AdapterConfig(stride=4, input_size=64, hidden_size=256, output_size=256)
    )
    student_lm = copy.deepcopy(lm)
    with torch.no_grad():
        for param in student_lm.parameters():
            param.add_(0.02 * torch.randn_like(param))
    student = SpeechAdaptedLM(encoder, features, adapter, student_lm, tokenizer).eval()
    teacher = Teacher(lm, tokenizer, "bench-teacher")
    lm.to(device)
    student.to(device)
    return teacher, student


def smollm2_models(device: torch.device) -> tuple[Teacher, SpeechAdaptedLM]:
    """The builtin SmolLM2-135M teacher and a student of the recipe's shape around it."""
    from saladpipe.assets.smollm2 import ensure_smollm2
    from saladpipe.data_schemas.config import ModelSpec
    from saladpipe.models.loading import load_teacher
    from saladpipe.training.new_student import new_student
    from saladpipe.training.recipe import PretrainedEncoderRecipe

    folder = ensure_smollm2()
    spec = ModelSpec(source="builtin:smollm2-135m")
    teacher = load_teacher(spec, str(device), "float32", {"smollm2-135m": folder})
    student = new_student(teacher.model, teacher.tokenizer, PretrainedEncoderRecipe(), seed=0)
    student.to(device)
    return teacher, student.eval()


def build_items(count: int) -> list[ScoreItem]:
    """Texts of 1, 2, 4 or 8 glosses, split in half; noise stands in for the spoken prefix."""
    glosses = strings(build_wordnet_corpus(per_domain=max(40, count), seed=0).column("text"))
    rng = np.random.default_rng(0)
    items = []
    cursor = 0
    for i in range(count):
        size = (1, 2, 4, 8)[i % 4]
        words = " ".join(glosses[cursor : cursor + size]).split()
        cursor += size
        cut = len(words) // 2
        seconds = min(SECONDS_PER_WORD * cut, 20.0)
        audio = (0.1 * rng.standard_normal(round(seconds * RATE))).astype(np.float32)
        items.append(ScoreItem(f"t{i}", " ".join(words[:cut]), " ".join(words[cut:]), audio, RATE))
    return items


def corpus_texts() -> list[str]:
    return strings(build_wordnet_corpus(per_domain=10000, seed=1).column("text"))


@torch.inference_mode()
def bare_loop(scorer: DistillationScorer, batches: list[list[PreparedRow]]) -> list[float]:
    """The models' own forward passes on the same batches; the KL of the whole batch at once."""
    teacher = scorer.teacher.model
    student = scorer.student
    assert isinstance(student, SpeechAdaptedLM)
    device = student.device
    pad = scorer.teacher.tokenizer.pad_token_id
    means: list[float] = []
    for batch in batches:
        sequences = [row.prefix_ids + row.continuation_ids for row in batch]
        width = max(len(s) for s in sequences)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        keep = torch.zeros_like(ids, dtype=torch.bool)
        for i, (row, seq) in enumerate(zip(batch, sequences, strict=True)):
            ids[i, : len(seq)] = torch.tensor(seq)
            mask[i, : len(seq)] = 1
            keep[i, len(row.prefix_ids) - 1 : len(seq) - 1] = True
        teacher_logits = teacher(
            input_ids=ids.to(device), attention_mask=mask.to(device), logits_to_keep=keep.to(device)
        ).logits
        embeds, _ = student.encode_audio([row.audio for row in batch])
        audio_lengths = [row.audio_positions for row in batch]
        continuations = [row.continuation_ids for row in batch]
        inputs, student_mask = student.build_inputs(embeds, audio_lengths, continuations)
        student_keep = torch.zeros_like(student_mask, dtype=torch.bool)
        for i, (a, cont) in enumerate(zip(audio_lengths, continuations, strict=True)):
            student_keep[i, a - 1 : a - 1 + len(cont)] = True
        student_logits = student.lm(
            inputs_embeds=inputs, attention_mask=student_mask, logits_to_keep=student_keep
        ).logits
        kl = kl_teacher_student(teacher_logits, student_logits)
        counts = torch.tensor([len(c) for c in continuations], device=device)
        owner = torch.repeat_interleave(torch.arange(len(batch), device=device), counts)
        sums = torch.zeros(len(batch), device=device).index_add_(0, owner, kl)
        means.extend((sums / counts).tolist())
    return means


@torch.inference_mode()
def per_sample_loop(scorer: DistillationScorer, rows: list[PreparedRow]) -> list[float]:
    """One text at a time, full logits over every position, a host sync per sample."""
    teacher = scorer.teacher.model
    student = scorer.student
    assert isinstance(student, SpeechAdaptedLM)
    device = student.device
    means = []
    for row in rows:
        p, c = row.prefix_ids, row.continuation_ids
        teacher_logits = teacher(input_ids=torch.tensor([p + c], device=device)).logits[0]
        embeds, lengths = student.encode_audio([row.audio])
        a = int(lengths[0])
        tokens = student.lm.get_input_embeddings()(torch.tensor(c, device=device))
        inputs = torch.cat([embeds[0, :a], tokens])[None]
        student_logits = student.lm(inputs_embeds=inputs).logits[0]
        kl = kl_teacher_student(
            teacher_logits[len(p) - 1 : len(p) - 1 + len(c)], student_logits[a - 1 : a - 1 + len(c)]
        )
        means.append(kl.mean().item())
    return means


class PeakMemory:
    """Peak memory above the level at start: CUDA allocator peak, or Linux peak RSS."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start = torch.cuda.memory_allocated()
        else:
            Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS to the current
            self.start = _status_kb("VmRSS") * 1024
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self.start
        else:
            self.peak = _status_kb("VmHWM") * 1024 - self.start


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} in /proc/self/status")


def timed(
    run: Callable[[], list[float]], repeats: int, device: torch.device
) -> tuple[float, float, int, list[float]]:
    """Best wall and best process-CPU seconds of `repeats` runs, peak memory, the scores.

    On a shared machine the CPU seconds of this process are the steadier measure:
    other processes lengthen the wall time, not the work done.
    """
    wall, cpu, peak, scores = float("inf"), float("inf"), 0, []
    for attempt in range(repeats):
        with PeakMemory(device) as memory:
            start, start_cpu = time.perf_counter(), time.process_time()
            scores = run()
            if device.type == "cuda":
                torch.cuda.synchronize()
            elapsed = time.perf_counter() - start
            wall = min(wall, elapsed)
            # On CUDA the work is the device's: its time is the wall time.
            cpu = min(cpu, elapsed if device.type == "cuda" else time.process_time() - start_cpu)
        if attempt == 0:
            peak = memory.peak
    return wall, cpu, peak, scores


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=192)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-tokens", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--models", choices=("toy", "smollm2"), default="toy")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    torch.manual_seed(0)
    if args.models == "smollm2":
        teacher, student = smollm2_models(device)
    else:
        teacher, student = build_models(corpus_texts(), device)
    items = build_items(args.texts)
    scorer = DistillationScorer(
        teacher,
        student,
        batch_tokens=args.batch_tokens,
        batch_size=64,
        max_tokens=1024,
        forgetting=False,
    )
    rows = [r for r in scorer.prepare(items) if isinstance(r, PreparedRow)]
    batches = [
        [rows[i] for i in b] for b in plan_batches([r.cost for r in rows], args.batch_tokens, 64)
    ]
    ordered = [row for batch in batches for row in batch]
    tokens = sum(len(r.continuation_ids) for r in rows)
    lengths = [len(r.continuation_ids) for r in rows]
    print(f"machine: {machine()}")
    print(
        f"models {args.models}; device {device}, {torch.get_num_threads()} threads; "
        f"vocabulary {scorer.vocab_size}; "
        f"{len(rows)} texts, {tokens} scored tokens (continuations of {min(lengths)} to "
        f"{max(lengths)} tokens), {len(batches)} batches of at most {args.batch_tokens} tokens"
    )
    scorer.score(items[:4])  # warm-up: first-call allocations and kernel choices
    runs = {
        "pipeline": lambda: [r.misalignment or 0.0 for r in scorer.score(items)],
        "bare": lambda: bare_loop(scorer, batches),
        "per-sample": lambda: per_sample_loop(scorer, ordered),
    }
    results = {name: timed(run, args.repeats, device) for name, run in runs.items()}
    pipeline = results["pipeline"][3]
    pipeline_ordered = [pipeline[r.index] for r in ordered]
    disagreement = max(
        float(np.max(np.abs(np.subtract(pipeline_ordered, results[name][3]))))
        for name in ("bare", "per-sample")
    )
    with_forgetting = DistillationScorer(
        teacher, student, batch_tokens=args.batch_tokens, batch_size=64, max_tokens=1024
    )
    forgetting = timed(lambda: [0.0 for _ in with_forgetting.score(items)], 1, device)
    unit = "GPU" if device.type == "cuda" else "CPU"
    print(f"{'':12}{'tokens/s':>10}{f'tokens/{unit}-s':>15}{'wall s':>9}{'peak MB':>9}")
    for name, (wall, cpu, peak, _) in results.items():
        print(f"{name:12}{tokens / wall:10.0f}{tokens / cpu:15.0f}{wall:9.2f}{peak / 2**20:9.0f}")
    for name, goal in (("bare", "0.9"), ("per-sample", "5")):
        wall_ratio = results[name][0] / results["pipeline"][0]
        cpu_ratio = results[name][1] / results["pipeline"][1]
        print(
            f"pipeline / {name} loop: {cpu_ratio:.2f} by {unit} time, {wall_ratio:.2f} by wall "
            f"time (goal >= {goal})"
        )
    print(f"pipeline with forgetting (a third pass): {tokens / forgetting[1]:.0f} tokens/{unit}-s")
    print(f"largest score disagreement between the three: {disagreement:.2e}")
    peak_mb = _status_kb("VmHWM") / 1024
    print(f"process peak resident memory (VmHWM, models included): {peak_mb:.0f} MB")


if __name__ == "__main__":
    main(sys.argv[1:])
