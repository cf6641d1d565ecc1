"""Misalignment scoring: KL(teacher on text prefix ‖ student on spoken prefix), per token.

For each item the teacher reads prefix tokens + continuation tokens and the student
hears the prefix audio, then reads the same continuation tokens. Misalignment is
the mean over the continuation tokens of KL(Q_teacher ‖ P_student) at T = 1, in
float32 whatever precision the models run in (SALAD, arXiv 2510.13632); forgetting
is the same KL with the student reading the prefix as text. Both are kept per token.

How it stays exact and fast:
- items are sorted by length and cut into batches under a token budget; padding is
  masked, so a sample's score does not depend on its batch;
- each model runs once per batch up to its last hidden states; the LM heads run only
  at the continuation's positions, a chunk of positions at a time, so full-vocabulary
  logits are never held for a whole batch;
- everything per sample (padding, positions) is laid out on the host, and results
  come back once per batch.

Truncation rule: the spoken prefix is never cut (its audio cannot be cut in step
with its text). The continuation keeps its first tokens, as many as fit in
min(max_tokens, each model's context) after the longest reading of the prefix; the
row is flagged `truncated`. A prefix that leaves room for no token is
`prefix_too_long`. A bad row gets a status, never an exception.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import soxr
import torch

from saladpipe.data_schemas.errors import SaladpipeError
from saladpipe.models.loading import Teacher, check_shared_vocabulary
from saladpipe.models.student import Student
from saladpipe.models.text_lm import TextLM

# Bumped whenever a change of the scoring code changes what it writes (a resume key).
SCORER_VERSION = 2

STATUS_OK = "ok"
STATUS_EMPTY_CONTINUATION = "empty_continuation"
STATUS_EMPTY_PREFIX = "empty_prefix"
STATUS_EMPTY_AUDIO = "empty_audio"
STATUS_INVALID_AUDIO = "invalid_audio"
STATUS_AUDIO_TOO_SHORT = "audio_too_short"
STATUS_AUDIO_TOO_LONG = "audio_too_long"
STATUS_PREFIX_TOO_LONG = "prefix_too_long"
STATUS_NON_FINITE = "non_finite_score"

# Logit elements (positions x vocabulary) in one KL chunk, per device type. On a GPU
# the chunk must be large, since every chunk reads the whole LM head (1.2 GB for a
# 150k x 4096 head in bf16): 2^26 is 256 MB a float32 tensor, 447 positions of a 150k
# vocabulary. On a CPU small chunks stay in reused memory: 2^21 is 8 MB.
KL_CHUNK_ELEMENTS = {"cuda": 1 << 26, "cpu": 1 << 21}


@dataclass(frozen=True)
class ScoreItem:
    """One probe: a text split at a word boundary, and the spoken prefix.

    The scorer joins prefix and continuation with one space, as they stood in the
    text, and tokenizes the continuation with that leading space.
    """

    text_id: str
    prefix_text: str
    continuation_text: str
    audio: np.ndarray
    sampling_rate: int


@dataclass(frozen=True)
class ScoreResult:
    """The scores of one item, or its row-level reason in `status` with no scores.

    `token_kl` and `token_forgetting` hold the per-token values behind the means
    (float32, one per scored continuation token, in order of `token_ids`).
    """

    text_id: str
    status: str
    misalignment: float | None = None
    forgetting: float | None = None
    truncated: bool = False
    token_ids: tuple[int, ...] = ()
    token_kl: np.ndarray | None = None
    token_forgetting: np.ndarray | None = None

    @property
    def n_tokens(self) -> int:
        return len(self.token_ids)


@dataclass(frozen=True)
class PreparedRow:
    """An item that passed the row checks, tokenized, at the student's rate, fitted."""

    index: int
    prefix_ids: list[int]
    continuation_ids: list[int]
    audio: np.ndarray
    audio_positions: int
    truncated: bool

    @property
    def cost(self) -> int:
        """Positions of the longest of the sequences the models read for this row."""
        return max(len(self.prefix_ids), self.audio_positions) + len(self.continuation_ids)


@dataclass(frozen=True)
class _TeacherSide:
    """What the KL needs of the teacher's logits, computed once for both student passes."""

    logits: torch.Tensor  # float32, as the model gave them
    top: torch.Tensor  # each row's largest logit
    weights: torch.Tensor  # exp(logits - top): the probabilities times a row constant
    total: torch.Tensor  # row sums of the weights
    absent: torch.Tensor  # tokens whose probability is zero (ruled out, or below float32)


def _teacher_side(teacher_logits: torch.Tensor) -> _TeacherSide:
    logits = teacher_logits.float()
    top = logits.amax(dim=-1, keepdim=True)
    weights = (logits - top).exp_()
    return _TeacherSide(logits, top, weights, weights.sum(dim=-1), weights == 0)


def kl_teacher_student(teacher_logits: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
    """KL(Q_teacher ‖ P_student) per position over the last axis, in float32, T = 1.

    The naive sum q · (log q − log p) loses the small KL of two close distributions
    to the rounding of the two log-normalisers (about 1e-7 × their size, absolute).
    Here the log-ratio d = t − s is taken from the logits themselves, centred on its
    teacher mean c, and KL = E_q[e + expm1(−e)] + (log1p(B) − B) with e = d − c and
    B = E_q[expm1(−e)]: the normalisers cancel exactly and the first term sums
    non-negative values, so the result stays within about 1e-6 relative.
    Distributions far apart (B > 1/2) use E_q[e] + log1p(B), and those whose
    log-ratios would overflow float32 the plain E_q[d] + lse(s) − lse(t).
    """
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(
            f"logit shapes differ: teacher {tuple(teacher_logits.shape)}, "
            f"student {tuple(student_logits.shape)}"
        )
    return _kl_given_teacher(_teacher_side(teacher_logits), student_logits)


def _kl_given_teacher(teacher: _TeacherSide, student_logits: torch.Tensor) -> torch.Tensor:
    weights, absent = teacher.weights, teacher.absent
    total = teacher.total.double()
    student = student_logits.float()
    top = student.amax(dim=-1, keepdim=True)
    # Tokens the teacher rules out add no term of their own (their q log q is 0).
    ratio = torch.sub(teacher.logits, student).masked_fill_(absent, 0.0)
    weighted_ratio = torch.linalg.vecdot(weights, ratio)
    centre = (weighted_ratio / teacher.total).unsqueeze(-1)
    overflow = ratio.amin(dim=-1, keepdim=True) < centre - 80.0  # expm1(-e) past float32
    growth = torch.sub(centre, ratio).clamp_(max=80.0).expm1_()  # expm1(-e)
    centred = ratio.sub_(centre)  # e
    excess = torch.linalg.vecdot(weights, growth).double() / total
    second = torch.linalg.vecdot(weights, growth.add_(centred)).double() / total
    centre64 = centre.squeeze(-1).double()
    mean = torch.linalg.vecdot(weights, centred).double() / total  # E_q[e], about 0
    # The student's probability of tokens the teacher rules out lowers all its others.
    spread = student.sub(top).exp_()
    student_total = spread.sum(dim=-1).double()
    lift = (top - teacher.top).squeeze(-1).double()
    outside = spread.mul_(absent).sum(dim=-1).double() * torch.exp(lift + centre64) / total
    excess = excess + outside
    close = second + outside + (torch.log1p(excess) - excess)
    apart = mean + torch.log1p(excess)
    plain = centre64 + lift + torch.log(student_total) - torch.log(total)
    kl = torch.where(overflow.squeeze(-1), plain, torch.where(excess > 0.5, apart, close))
    # A student that rules out a token the teacher expects: infinite divergence.
    return torch.where(torch.isposinf(centre64), torch.inf, kl).float()


# A batch's longest row is at most this much longer than its shortest, so that
# padding stays under about a quarter of what the models compute.
BATCH_LENGTH_RATIO = 1.25
BATCH_LENGTH_SLACK = 16


def plan_batches(costs: Sequence[int], batch_tokens: int, max_batch: int) -> list[list[int]]:
    """Indices sorted by cost (stable), cut into batches of similar length under a budget.

    A batch's padded size, its size times its largest cost, fits `batch_tokens`, and
    its largest cost is at most BATCH_LENGTH_RATIO x its smallest + BATCH_LENGTH_SLACK.
    A single item over the budget is a batch of its own.
    """
    order = sorted(range(len(costs)), key=lambda i: (costs[i], i))
    batches: list[list[int]] = []
    for i in order:
        current = batches[-1] if batches else None
        if (
            current
            and len(current) < max_batch
            and (len(current) + 1) * costs[i] <= batch_tokens
            and costs[i] <= costs[current[0]] * BATCH_LENGTH_RATIO + BATCH_LENGTH_SLACK
        ):
            current.append(i)
        else:
            batches.append([i])
    return batches


class DistillationScorer:
    """Scores items with one teacher/student pair; results do not depend on batching."""

    def __init__(
        self,
        teacher: Teacher,
        student: Student,
        *,
        batch_tokens: int,
        batch_size: int,
        max_tokens: int,
        forgetting: bool = True,
        kl_chunk_elements: int | None = None,
    ) -> None:
        if batch_tokens < 2 or batch_size < 1 or max_tokens < 2:
            # One prefix position plus one continuation token is the least that can be scored.
            raise SaladpipeError(
                "scoring needs batch_tokens >= 2, batch_size >= 1 and max_tokens >= 2 "
                f"(got {batch_tokens}, {batch_size} and {max_tokens})"
            )
        self.vocab_size = check_shared_vocabulary(teacher.tokenizer, student.tokenizer)
        self._teacher_lm = TextLM(teacher.model)
        for role, lm in (("teacher", self._teacher_lm), ("student", student.text_lm)):
            if lm.vocab_rows < self.vocab_size:
                raise SaladpipeError(
                    f"{role} LM head has {lm.vocab_rows} rows for a vocabulary of "
                    f"{self.vocab_size} tokens"
                )
            lm.verify(role)
        self.teacher = teacher
        self.student = student
        self.batch_tokens = batch_tokens
        self.batch_size = batch_size
        self.forgetting = forgetting
        self.teacher_id = teacher.model_id
        self.student_id = student.model_id
        if kl_chunk_elements is None:
            kl_chunk_elements = KL_CHUNK_ELEMENTS.get(self._teacher_lm.device.type, 1 << 21)
        self._chunk = max(1, kl_chunk_elements // self.vocab_size)
        pad = teacher.tokenizer.pad_token_id
        self._pad = 0 if pad is None else int(pad)
        self._teacher_limit = min(max_tokens, self._teacher_lm.context_length or max_tokens)
        self._student_limit = min(max_tokens, student.text_lm.context_length or max_tokens)

    def score(self, items: Sequence[ScoreItem]) -> list[ScoreResult]:
        """One result per item, in input order."""
        prepared = self.prepare(items)
        results: list[ScoreResult | None] = [
            ScoreResult(item.text_id, p) if isinstance(p, str) else None
            for item, p in zip(items, prepared, strict=True)
        ]
        rows = [p for p in prepared if isinstance(p, PreparedRow)]
        for batch_indices in plan_batches(
            [r.cost for r in rows], self.batch_tokens, self.batch_size
        ):
            batch = [rows[i] for i in batch_indices]
            kl, forgetting = self._score_batch(batch)
            bounds = np.cumsum([len(r.continuation_ids) for r in batch])[:-1]
            kl_parts = np.split(kl, bounds)
            forget_parts = np.split(forgetting, bounds) if forgetting is not None else None
            for j, row in enumerate(batch):
                results[row.index] = _result(
                    items[row.index].text_id,
                    row,
                    kl_parts[j],
                    None if forget_parts is None else forget_parts[j],
                )
        return [r for r in results if r is not None]

    def prepare(self, items: Sequence[ScoreItem]) -> list[PreparedRow | str]:
        """Tokenize (one call per side), check and fit every item; a str is its status."""
        tokenizer = self.teacher.tokenizer
        prefixes = [item.prefix_text.strip() for item in items]
        continuations = [item.continuation_text.strip() for item in items]
        wanted = [i for i, c in enumerate(continuations) if c]
        prefix_ids: dict[int, list[int]] = {}
        continuation_ids: dict[int, list[int]] = {}
        if wanted:
            encoded_prefixes = tokenizer([prefixes[i] for i in wanted], add_special_tokens=True)
            encoded_continuations = tokenizer(
                [" " + continuations[i] for i in wanted], add_special_tokens=False
            )
            for j, i in enumerate(wanted):
                prefix_ids[i] = list(encoded_prefixes["input_ids"][j])
                continuation_ids[i] = list(encoded_continuations["input_ids"][j])
        return [
            self._fit(i, item, prefix_ids.get(i, []), continuation_ids.get(i, []))
            for i, item in enumerate(items)
        ]

    def _fit(
        self, index: int, item: ScoreItem, prefix_ids: list[int], continuation_ids: list[int]
    ) -> PreparedRow | str:
        if not continuation_ids:
            return STATUS_EMPTY_CONTINUATION
        if not prefix_ids:
            return STATUS_EMPTY_PREFIX
        audio = self._prepare_audio(item)
        if isinstance(audio, str):
            return audio
        positions = self.student.audio_positions(audio.size)
        if positions == 0:
            return STATUS_AUDIO_TOO_SHORT
        # Longest reading of the prefix: the teacher's tokens, the student's audio
        # positions, and the student's tokens when it reads the prefix as text too.
        room = min(self._teacher_limit - len(prefix_ids), self._student_limit - positions)
        if self.forgetting:
            room = min(room, self._student_limit - len(prefix_ids))
        if room < 1:
            return STATUS_PREFIX_TOO_LONG
        return PreparedRow(
            index=index,
            prefix_ids=prefix_ids,
            continuation_ids=continuation_ids[:room],
            audio=audio,
            audio_positions=positions,
            truncated=len(continuation_ids) > room,
        )

    def _prepare_audio(self, item: ScoreItem) -> np.ndarray | str:
        try:
            audio = np.asarray(item.audio, dtype=np.float32)
        except (TypeError, ValueError):
            return STATUS_INVALID_AUDIO
        if audio.ndim != 1 or item.sampling_rate <= 0:
            return STATUS_INVALID_AUDIO
        if audio.size == 0:
            return STATUS_EMPTY_AUDIO
        if not np.isfinite(audio).all():
            return STATUS_INVALID_AUDIO
        if item.sampling_rate != self.student.sampling_rate:
            audio = soxr.resample(audio, item.sampling_rate, self.student.sampling_rate)
        limit = self.student.max_audio_samples
        if limit is not None and audio.size > limit:
            return STATUS_AUDIO_TOO_LONG
        return np.ascontiguousarray(audio, dtype=np.float32)

    @torch.inference_mode()
    def _score_batch(self, batch: Sequence[PreparedRow]) -> tuple[np.ndarray, np.ndarray | None]:
        """Per-token KL of every row's continuation, rows concatenated; one copy to the host."""
        prefixes = [row.prefix_ids for row in batch]
        continuations = [row.continuation_ids for row in batch]
        teacher = self._teacher_lm.continuation_hidden(prefixes, continuations, self._pad)
        speech = self.student.speech_hidden([row.audio for row in batch], continuations)
        text = (
            self.student.text_lm.continuation_hidden(prefixes, continuations, self._pad)
            if self.forgetting
            else None
        )
        kl, forgetting = self._chunked_kl(teacher, speech, text)
        host = torch.stack([kl, forgetting]) if forgetting is not None else kl[None]
        values = host.cpu().numpy()
        return values[0], (values[1] if forgetting is not None else None)

    def _chunked_kl(
        self, teacher: torch.Tensor, speech: torch.Tensor, text: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Apply the heads and the KL a chunk of positions at a time."""
        vocab = self.vocab_size
        student_lm = self.student.text_lm
        device = self._teacher_lm.device
        kl = torch.empty(teacher.shape[0], dtype=torch.float32, device=device)
        forgetting = torch.empty_like(kl) if text is not None else None
        for start in range(0, teacher.shape[0], self._chunk):
            part = slice(start, start + self._chunk)
            side = _teacher_side(self._teacher_lm.logits(teacher[part])[:, :vocab])
            kl[part] = _kl_given_teacher(
                side, student_lm.logits(speech[part])[:, :vocab].to(device)
            )
            if text is not None and forgetting is not None:
                forgetting[part] = _kl_given_teacher(
                    side, student_lm.logits(text[part])[:, :vocab].to(device)
                )
        return kl, forgetting


def _result(
    text_id: str, row: PreparedRow, kl: np.ndarray, forgetting: np.ndarray | None
) -> ScoreResult:
    """Means in float64 of the float32 per-token values; non-finite means no score."""
    misalignment = float(np.mean(kl, dtype=np.float64))
    forget = None if forgetting is None else float(np.mean(forgetting, dtype=np.float64))
    finite = math.isfinite(misalignment) and (forget is None or math.isfinite(forget))
    return ScoreResult(
        text_id=text_id,
        status=STATUS_OK if finite else STATUS_NON_FINITE,
        misalignment=misalignment if finite else None,
        forgetting=forget if finite else None,
        truncated=row.truncated,
        token_ids=tuple(row.continuation_ids),
        token_kl=kl,
        token_forgetting=forgetting,
    )
