"""Misalignment scoring: KL(teacher on text prefix ‖ student on spoken prefix).

For each item the teacher reads prefix tokens + continuation tokens and the student
reads prefix audio + the same continuation tokens; the score is the mean over the
continuation tokens of KL(Q_teacher ‖ P_student) at T = 1, in float32 (SALAD,
arXiv 2510.13632). Pure computation: no file I/O. A bad row gets a status, never
an exception.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import soxr
import torch
from transformers import PreTrainedModel

from saladpipe.data_schemas.errors import SaladpipeError
from saladpipe.pipeline.models.loading import Teacher, check_shared_vocabulary
from saladpipe.pipeline.models.speech_lm import SpeechAdaptedLM

STATUS_OK = "ok"
STATUS_OK_TRUNCATED = "ok_truncated"
STATUS_EMPTY_CONTINUATION = "empty_continuation"
STATUS_EMPTY_PREFIX = "empty_prefix"
STATUS_EMPTY_AUDIO = "empty_audio"
STATUS_INVALID_AUDIO = "invalid_audio"
STATUS_AUDIO_TOO_SHORT = "audio_too_short"
STATUS_AUDIO_TOO_LONG = "audio_too_long"
STATUS_PREFIX_TOO_LONG = "prefix_too_long"
STATUS_NON_FINITE = "non_finite_score"

# Bound on logits turned into float32 at once (elements), so a large vocabulary
# times a large batch does not multiply peak memory.
_KL_CHUNK_ELEMENTS = 1 << 25


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
    """The misalignment of one item, or None with the row-level reason in `status`.

    status: ok, ok_truncated (continuation tail cut to fit max_tokens or the model
    context), empty_continuation, empty_prefix, empty_audio, invalid_audio,
    audio_too_short, audio_too_long, prefix_too_long, non_finite_score.
    """

    text_id: str
    misalignment: float | None
    n_tokens: int
    status: str


@dataclass(frozen=True)
class _Row:
    """An item that passed the row checks, tokenized and at the student's rate."""

    index: int
    prefix_ids: list[int]
    continuation_ids: list[int]
    audio: np.ndarray
    audio_length: int
    truncated: bool


def kl_teacher_student(teacher_logits: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
    """KL(Q_teacher ‖ P_student) per position over the last axis, in float32, T = 1."""
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(
            f"logit shapes differ: teacher {tuple(teacher_logits.shape)}, "
            f"student {tuple(student_logits.shape)}"
        )
    log_q = torch.log_softmax(teacher_logits.float(), dim=-1)
    log_p = torch.log_softmax(student_logits.float(), dim=-1)
    q = log_q.exp()
    # Where the teacher gives zero probability the term is 0, not 0 * (-inf - x).
    terms = torch.where(q > 0, q * (log_q - log_p), torch.zeros_like(q))
    return terms.sum(dim=-1)


def _context_length(model: PreTrainedModel) -> int | None:
    config = model.config.get_text_config()
    for name in ("max_position_embeddings", "n_positions"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _output_size(model: PreTrainedModel) -> int | None:
    head = model.get_output_embeddings()
    weight = getattr(head, "weight", None)
    return None if weight is None else int(weight.shape[0])


def _right_pad(sequences: Sequence[list[int]], pad_id: int, device: torch.device) -> torch.Tensor:
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    for i, seq in enumerate(sequences):
        ids[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    return ids.to(device)


class DistillationScorer:
    """Scores items with one teacher/student pair; results do not depend on batching."""

    def __init__(
        self, teacher: Teacher, student: SpeechAdaptedLM, batch_size: int, max_tokens: int
    ) -> None:
        if batch_size < 1 or max_tokens < 2:
            # One prefix position plus one continuation token is the least that can be scored.
            raise SaladpipeError(
                f"scoring needs batch_size >= 1 and max_tokens >= 2 "
                f"(got {batch_size} and {max_tokens})"
            )
        check_shared_vocabulary(teacher.tokenizer, student.tokenizer)
        teacher_size, student_size = _output_size(teacher.model), _output_size(student.lm)
        if teacher_size != student_size:
            raise SaladpipeError(
                f"teacher and student LM heads differ in size: {teacher_size} vs {student_size}"
            )
        self.teacher = teacher
        self.student = student
        self.batch_size = batch_size
        self.teacher_id = teacher.model_id
        self.student_id = student.model_id
        self._teacher_limit = min(max_tokens, _context_length(teacher.model) or max_tokens)
        self._student_limit = min(max_tokens, _context_length(student.lm) or max_tokens)

    def score(self, items: Sequence[ScoreItem]) -> list[ScoreResult]:
        """One result per item, in input order."""
        results: list[ScoreResult | None] = [None] * len(items)
        rows: list[_Row] = []
        for index, item in enumerate(items):
            prepared = self._prepare(index, item)
            if isinstance(prepared, str):
                results[index] = ScoreResult(item.text_id, None, 0, prepared)
            else:
                rows.append(prepared)
        # Similar lengths together keep padding small; scores do not depend on the order.
        rows.sort(key=lambda r: (r.audio_length + len(r.continuation_ids), r.index))
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start : start + self.batch_size]
            for row, value in zip(batch, self._score_batch(batch), strict=True):
                item = items[row.index]
                n_tokens = len(row.continuation_ids)
                if not math.isfinite(value):
                    results[row.index] = ScoreResult(
                        item.text_id, None, n_tokens, STATUS_NON_FINITE
                    )
                    continue
                status = STATUS_OK_TRUNCATED if row.truncated else STATUS_OK
                results[row.index] = ScoreResult(item.text_id, value, n_tokens, status)
        return [r for r in results if r is not None]

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

    def _prepare(self, index: int, item: ScoreItem) -> _Row | str:
        """Tokenize, check and fit one item, or return the reason it cannot be scored."""
        prefix = item.prefix_text.strip()
        continuation = item.continuation_text.strip()
        if not continuation:
            return STATUS_EMPTY_CONTINUATION
        tokenizer = self.teacher.tokenizer
        prefix_ids = list(tokenizer(prefix, add_special_tokens=True)["input_ids"])
        continuation_ids = list(
            tokenizer(" " + continuation, add_special_tokens=False)["input_ids"]
        )
        if not prefix_ids:
            return STATUS_EMPTY_PREFIX
        audio = self._prepare_audio(item)
        if isinstance(audio, str):
            return audio
        audio_length = self.student.audio_embed_length(audio.size)
        if audio_length == 0:
            return STATUS_AUDIO_TOO_SHORT
        room = min(self._teacher_limit - len(prefix_ids), self._student_limit - audio_length)
        if room < 1:
            return STATUS_PREFIX_TOO_LONG
        truncated = len(continuation_ids) > room
        return _Row(
            index=index,
            prefix_ids=prefix_ids,
            continuation_ids=continuation_ids[:room],
            audio=audio,
            audio_length=audio_length,
            truncated=truncated,
        )

    def _teacher_logits(self, batch: Sequence[_Row]) -> torch.Tensor:
        """Teacher logits predicting each continuation token, samples concatenated in order."""
        model = self.teacher.model
        device = next(model.parameters()).device
        sequences = [row.prefix_ids + row.continuation_ids for row in batch]
        pad_id = self.teacher.tokenizer.pad_token_id
        ids = _right_pad(sequences, 0 if pad_id is None else pad_id, device)
        lengths = torch.tensor([len(s) for s in sequences], device=device)
        mask = (torch.arange(ids.shape[1], device=device)[None, :] < lengths[:, None]).long()
        keep = torch.zeros_like(ids, dtype=torch.bool)
        for i, row in enumerate(batch):
            start = len(row.prefix_ids) - 1
            keep[i, start : start + len(row.continuation_ids)] = True
        out = model(input_ids=ids, attention_mask=mask, logits_to_keep=keep, use_cache=False)
        logits: torch.Tensor = out.logits
        return logits

    @torch.inference_mode()
    def _score_batch(self, batch: Sequence[_Row]) -> list[float]:
        """Mean KL over each row's continuation tokens."""
        teacher_logits = self._teacher_logits(batch)
        student_logits = self.student(
            [row.audio for row in batch], [row.continuation_ids for row in batch]
        ).to(teacher_logits.device)
        rows_per_chunk = max(1, _KL_CHUNK_ELEMENTS // teacher_logits.shape[-1])
        kl = torch.cat(
            [
                kl_teacher_student(t, s)
                for t, s in zip(
                    teacher_logits.split(rows_per_chunk),
                    student_logits.split(rows_per_chunk),
                    strict=True,
                )
            ]
        )
        counts = [len(row.continuation_ids) for row in batch]
        return [float(part.mean()) for part in kl.split(counts)]
