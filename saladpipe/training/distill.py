"""Cross-modal distillation, the training of stage I and stage II (α = 1, as in SALAD).

The loss is the misalignment itself: the mean over continuation tokens of
KL(teacher reading the prefix text ‖ student hearing the prefix audio), T = 1.
Rows are prepared by the scorer's own `prepare` (tokenization, audio checks,
truncation), so training sees exactly what scoring measures.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch

from saladpipe.models.distillation import DistillationScorer, PreparedRow, ScoreItem
from saladpipe.models.loading import Teacher
from saladpipe.models.speech_lm import SpeechAdaptedLM
from saladpipe.models.text_lm import TextLM
from saladpipe.progress import Progress
from saladpipe.training.optim import Trainer, seeded
from saladpipe.training.recipe import DistillRecipe
from saladpipe.training.speech import SAMPLE_RATE, SpokenPrefix


def context_length(teacher: Teacher, student: SpeechAdaptedLM) -> int:
    """Positions both LMs can read: the most a prefix and its continuation may take."""
    return min(
        teacher.model.config.get_text_config().max_position_embeddings,
        student.lm.config.get_text_config().max_position_embeddings,
    )


def scorer_for(
    teacher: Teacher, student: SpeechAdaptedLM, batch_size: int = 32
) -> DistillationScorer:
    """The run's scorer for this pair (float32, CPU), with the forgetting pass."""
    return DistillationScorer(
        teacher,
        student,
        batch_tokens=batch_size * 96,
        batch_size=batch_size,
        max_tokens=context_length(teacher, student),
        forgetting=True,
    )


def score_items(items: Sequence[SpokenPrefix]) -> list[ScoreItem]:
    return [
        ScoreItem(item.text_id, item.prefix, item.continuation, item.audio, SAMPLE_RATE)
        for item in items
    ]


def prepare_rows(
    scorer: DistillationScorer, items: Sequence[SpokenPrefix]
) -> tuple[list[PreparedRow], Counter[str]]:
    """Rows the scorer accepts, and how many it refused by status (a clip too long, ...)."""
    prepared = scorer.prepare(score_items(items))
    rows = [p for p in prepared if isinstance(p, PreparedRow)]
    return rows, Counter(p for p in prepared if isinstance(p, str))


def distillation_loss(
    teacher_lm: TextLM,
    student: SpeechAdaptedLM,
    batch: Sequence[PreparedRow],
    pad_id: int,
    vocab: int,
    frames: Sequence[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Mean over the batch's continuation tokens of KL(teacher ‖ student), in float32.

    `frames`: the batch's encoder frames, kept from an earlier pass (frozen encoder)."""
    continuations = [row.continuation_ids for row in batch]
    with torch.no_grad():
        hidden = teacher_lm.continuation_hidden(
            [row.prefix_ids for row in batch], continuations, pad_id
        )
        target = torch.log_softmax(teacher_lm.logits(hidden)[:, :vocab].float(), dim=-1)
    if frames is None:
        speech = student.speech_hidden([row.audio for row in batch], continuations)
    else:
        embeds, lengths = student.adapt_frames(frames)
        speech = student.hidden_after_audio(embeds, lengths.tolist(), continuations)
    log_p = torch.log_softmax(student.text_lm.logits(speech)[:, :vocab].float(), dim=-1)
    kl = torch.sum(target.exp() * (target - log_p), dim=-1)
    return kl.mean()


def encode_rows(
    student: SpeechAdaptedLM, rows: Sequence[PreparedRow], what: str, batch_size: int = 16
) -> list[torch.Tensor]:
    """Every row's encoder frames, once: a frozen encoder's output does not change."""
    frames: list[torch.Tensor] = []
    with torch.no_grad(), Progress(f"{what}: encoding clips", len(rows), "clips") as progress:
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            kept = student.clip_frames([row.audio for row in batch])
            frames.extend(f.clone() for f in kept)  # not views that hold the padded batch
            progress.update(len(batch))
    return frames


def distill(
    teacher: Teacher,
    student: SpeechAdaptedLM,
    rows: Sequence[PreparedRow],
    recipe: DistillRecipe,
    seed: int,
    what: str,
    train_encoder: bool = True,
) -> list[float]:
    """Train the student's adapter, its encoder unless frozen (`train_encoder` False: a
    pretrained encoder, whose frames are then computed once and kept) and its LM if its
    rate is set; mean loss per epoch.

    The same rows, recipe and seed give the same weights. The student is left in eval
    mode with gradients off, as the loaders leave a model.
    """
    if not rows:
        raise ValueError(f"{what}: no training rows")
    if train_encoder and student.frame_memo is not None:
        raise ValueError(f"{what}: a student with a frame memo cannot train its encoder")
    teacher_lm = TextLM(teacher.model)
    vocab = len(teacher.tokenizer)
    pad = teacher.tokenizer.pad_token_id
    pad_id = 0 if pad is None else int(pad)
    encoder_params = list(student.audio_encoder.parameters()) if train_encoder else []
    speech_params = [*encoder_params, *student.adapter.parameters()]
    lm_params = list(student.lm.parameters())
    student.requires_grad_(False)
    for param in speech_params:
        param.requires_grad_(True)
    if recipe.lm_learning_rate > 0:
        for param in lm_params:
            param.requires_grad_(True)
    per_epoch = math.ceil(len(rows) / recipe.batch_size)
    trainer = Trainer(
        [(speech_params, recipe.learning_rate), (lm_params, recipe.lm_learning_rate)],
        total_steps=recipe.epochs * per_epoch,
        warmup=recipe.warmup,
    )
    rng = np.random.default_rng(seed)
    losses: list[float] = []
    kept = None if train_encoder else encode_rows(student, rows, what)
    student.train()
    try:
        with seeded(seed), Progress(what, recipe.epochs * per_epoch, "steps") as progress:
            for _ in range(recipe.epochs):
                order = rng.permutation(len(rows))
                total = 0.0
                for start in range(0, len(rows), recipe.batch_size):
                    picked = order[start : start + recipe.batch_size]
                    batch = [rows[i] for i in picked]
                    frames = None if kept is None else [kept[i] for i in picked]
                    loss = distillation_loss(teacher_lm, student, batch, pad_id, vocab, frames)
                    total += trainer.step(loss) * len(batch)
                    progress.update(1)
                losses.append(total / len(rows))
    finally:
        student.eval().requires_grad_(False)
    return losses
