"""The teacher: a small GPT-2 and its BPE tokenizer, trained from scratch on glosses.

Each gloss is one sequence from position 0 followed by the end-of-text token,
exactly as scoring reads a prefix: no beginning-of-text token, no packing. Its
quality is reported as held-out perplexity next to a unigram model's on the same
predicted tokens (every token but the first of each gloss, end-of-text included).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import GPT2LMHeadModel, PreTrainedModel, PreTrainedTokenizerBase

from saladpipe.models.bpe import train_bpe_tokenizer
from saladpipe.models.configs import gpt2_config
from saladpipe.models.text_lm import right_pad
from saladpipe.progress import Progress
from saladpipe.training.optim import Trainer, seeded
from saladpipe.training.recipe import TeacherRecipe

# Sequences sorted by length together, so that batches carry little padding.
_BUCKET_BATCHES = 20


@dataclass(frozen=True)
class LanguageModelQuality:
    """Held-out perplexity of the teacher and of a unigram model on the same tokens."""

    perplexity: float
    unigram_perplexity: float
    tokens: int
    texts: int


def encode(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], limit: int) -> list[list[int]]:
    """Token ids of each text followed by end-of-text, cut to `limit` tokens (a model's
    context: a pretrained tokenizer may claim no limit at all)."""
    if not texts:
        return []  # the tokenizer refuses an empty batch
    eos = int(tokenizer.eos_token_id)
    ids = tokenizer(list(texts), add_special_tokens=False, truncation=True, max_length=limit)[
        "input_ids"
    ]
    return [[*seq, eos][:limit] for seq in ids]


def length_batches(
    lengths: Sequence[int], batch_size: int, rng: np.random.Generator | None
) -> Iterator[list[int]]:
    """Batches of indices of similar length; shuffled (buckets and batches) with `rng`."""
    order = rng.permutation(len(lengths)) if rng is not None else np.arange(len(lengths))
    span = batch_size * _BUCKET_BATCHES
    batches: list[list[int]] = []
    for start in range(0, len(order), span):
        bucket = sorted(order[start : start + span].tolist(), key=lambda i: (lengths[i], i))
        batches.extend(bucket[j : j + batch_size] for j in range(0, len(bucket), batch_size))
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    yield from batches


def new_teacher(recipe: TeacherRecipe, tokenizer: PreTrainedTokenizerBase) -> GPT2LMHeadModel:
    """An untrained GPT-2 of the recipe's shape (dropout off: the data is small, not noisy)."""
    config = gpt2_config(
        len(tokenizer),
        int(tokenizer.eos_token_id),
        width=recipe.hidden,
        layers=recipe.layers,
        heads=recipe.heads,
        context=recipe.context,
        dropout=0.0,
    )
    return GPT2LMHeadModel(config)


def teacher_steps(recipe: TeacherRecipe, texts: int) -> int:
    """Optimiser steps of the teacher's training on `texts` sequences."""
    return max(1, round(recipe.epochs * math.ceil(texts / recipe.batch_size)))


def teacher_step(
    model: GPT2LMHeadModel, trainer: Trainer, batch: Sequence[Sequence[int]], pad: int
) -> None:
    """One step on a batch of sequences, padding left out of the loss."""
    ids, mask = (torch.from_numpy(a) for a in right_pad(batch, pad))
    labels = ids.masked_fill(mask == 0, -100)
    trainer.step(model(input_ids=ids, attention_mask=mask, labels=labels).loss)


def train_teacher(
    texts: Sequence[str], recipe: TeacherRecipe, seed: int
) -> tuple[GPT2LMHeadModel, PreTrainedTokenizerBase]:
    """Tokenizer and GPT-2 trained on `texts`; the same texts and seed give the same weights."""
    tokenizer = train_bpe_tokenizer(texts, recipe.vocab_size, recipe.context)
    sequences = encode(tokenizer, texts, recipe.context)
    lengths = [len(s) for s in sequences]
    rng = np.random.default_rng(seed)
    total = teacher_steps(recipe, len(sequences))
    pad = int(tokenizer.pad_token_id)
    with seeded(seed):
        model = new_teacher(recipe, tokenizer)
    model.train()
    trainer = Trainer([(list(model.parameters()), recipe.learning_rate)], total, warmup=0.05)
    done = 0
    with Progress("train teacher", total, "steps") as progress:
        while done < total:
            for batch in length_batches(lengths, recipe.batch_size, rng):
                teacher_step(model, trainer, [sequences[i] for i in batch], pad)
                done += 1
                progress.update(1)
                if done == total:
                    break
    return model.eval(), tokenizer


@torch.inference_mode()
def held_out_quality(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    train_texts: Sequence[str],
    held_out_texts: Sequence[str],
    batch_size: int = 64,
) -> LanguageModelQuality:
    """Perplexity of `model` and of an add-one unigram model fitted on `train_texts`."""
    pad = int(tokenizer.pad_token_id)
    limit = int(model.config.get_text_config().max_position_embeddings)
    sequences = [s for s in encode(tokenizer, held_out_texts, limit) if len(s) >= 2]
    nll = 0.0
    for batch in length_batches([len(s) for s in sequences], batch_size, None):
        ids, mask = (
            torch.from_numpy(a).to(model.device)
            for a in right_pad([sequences[i] for i in batch], pad)
        )
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        log_p = torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:, None])[..., 0]
        nll -= float(log_p[mask[:, 1:].bool()].sum())
    counts = np.ones(len(tokenizer), dtype=np.float64)
    for seq in encode(tokenizer, train_texts, limit):
        np.add.at(counts, seq, 1.0)
    log_unigram = np.log(counts / counts.sum())
    targets = np.concatenate([s[1:] for s in sequences])
    return LanguageModelQuality(
        perplexity=math.exp(nll / targets.size),
        unigram_perplexity=math.exp(-float(log_unigram[targets].mean())),
        tokens=int(targets.size),
        texts=len(sequences),
    )
