"""The optimiser every training step here uses: AdamW, linear warm-up, cosine decay."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

GRADIENT_CLIP = 1.0
# Intra-op threads for training and evaluation. The models are tiny (matrices of a
# few hundred columns), and when another job keeps a core busy torch's threads wait
# on each other, so one thread is much faster than two (docs/benchmarks.md, "Training
# threads"). Speech, the other large cost, runs in worker processes on every core.
TRAIN_THREADS = 1


class Trainer:
    """AdamW over parameter groups [(params, peak learning rate)] for `total_steps` steps."""

    def __init__(
        self,
        groups: list[tuple[list[nn.Parameter], float]],
        total_steps: int,
        warmup: float,
        weight_decay: float = 0.01,
    ) -> None:
        groups = [(params, lr) for params, lr in groups if params and lr > 0]
        self.params = [p for params, _ in groups for p in params]
        self.optimizer = torch.optim.AdamW(
            [{"params": params, "lr": lr} for params, lr in groups],
            weight_decay=weight_decay,
            betas=(0.9, 0.98),
        )
        warm = max(1, round(warmup * total_steps))
        total = max(total_steps, warm + 1)

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            done = (step - warm) / max(1, total - warm)
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, done)))

        self.schedule = torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)

    def step(self, loss: torch.Tensor) -> float:
        loss.backward()
        nn.utils.clip_grad_norm_(self.params, GRADIENT_CLIP)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.schedule.step()
        return float(loss.detach())


def cpu_threads() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0))


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run with `threads` intra-op threads, then restore the previous setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Torch's global generator seeded for a block, and restored after it."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
