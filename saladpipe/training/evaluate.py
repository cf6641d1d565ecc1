"""Held-out evaluation: misalignment per domain, and a spoken multiple-choice task.

Misalignment is measured by the run's own scorer. The multiple-choice task is built
from the held-out glosses: after a prefix, pick the true continuation among
`choices - 1` continuations of other glosses, by length-normalised log-likelihood
(mean log-probability per token), as the paper scores its benchmarks. The teacher
reads the prefix as text, the student hears it; the gap is the difference of the
two accuracies, as in the paper.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from saladpipe.models.distillation import STATUS_OK, PreparedRow
from saladpipe.models.loading import Teacher
from saladpipe.models.speech_lm import SpeechAdaptedLM
from saladpipe.models.text_lm import TextLM
from saladpipe.progress import Progress
from saladpipe.training.distill import (
    context_length,
    prepare_rows,
    score_items,
    scorer_for,
)
from saladpipe.training.speech import SpokenPrefix

# (item, choice) pairs scored per forward pass.
_CHOICE_BATCH = 64


@dataclass(frozen=True)
class ChoiceQuestion:
    """A prefix (row of the evaluation set) and continuations, one of them true."""

    row: int
    choices: tuple[tuple[int, ...], ...]
    answer: int


@dataclass(frozen=True)
class EvalSet:
    """Held-out spoken prefixes, the rows the scorer accepts, and the questions on them."""

    items: list[SpokenPrefix]
    rows: list[PreparedRow]
    domains: list[str]  # domain of each row
    questions: list[ChoiceQuestion]
    refused: Counter[str]
    # The teacher reading the prefixes: the same for every student.
    text_accuracy: float


@dataclass(frozen=True)
class Evaluation:
    """One student on the evaluation set."""

    misalignment: float
    forgetting: float
    by_domain: dict[str, float]
    text_accuracy: float
    speech_accuracy: float
    scored: int
    unscored: dict[str, int]

    @property
    def accuracy_gap(self) -> float:
        return self.text_accuracy - self.speech_accuracy


def make_eval_set(
    teacher: Teacher,
    student: SpeechAdaptedLM,
    items: Sequence[SpokenPrefix],
    choices: int,
    seed: int,
) -> EvalSet:
    """Prepare the rows once (tokenized, checked) and draw each row's distractors.

    Each option is cut to the room the row leaves after its prefix (text or audio,
    whichever is longer), as the scorer cut the true continuation, so that no option
    runs past either LM's context. Options are distinct and differ from the true
    one: two glosses may end alike, and a duplicate would make a question unanswerable.
    """
    if choices < 2:
        raise ValueError("a multiple-choice question needs at least 2 choices")
    rows, refused = prepare_rows(scorer_for(teacher, student), items)
    distinct = sorted({tuple(row.continuation_ids) for row in rows})
    limit = context_length(teacher, student)
    rng = np.random.default_rng(seed)
    questions = []
    for i, row in enumerate(rows):
        room = limit - max(len(row.prefix_ids), row.audio_positions)
        true = tuple(row.continuation_ids)
        options: list[tuple[int, ...]] = []
        for j in rng.permutation(len(distinct)):
            option = distinct[j][:room]
            if option != true and option not in options:
                options.append(option)
                if len(options) == choices - 1:
                    break
        if len(options) < choices - 1:
            raise ValueError(
                f"evaluation row {i}: {len(options) + 1} distinct continuations "
                f"cannot make {choices}-way questions"
            )
        answer = int(rng.integers(choices))
        options.insert(answer, true)
        questions.append(ChoiceQuestion(i, tuple(options), answer))
    domains = [items[row.index].domain for row in rows]
    text_accuracy = text_choice_accuracy(teacher, rows, questions)
    return EvalSet(list(items), rows, domains, questions, refused, text_accuracy)


def _mean_log_likelihood(logits: torch.Tensor, targets: Sequence[Sequence[int]]) -> np.ndarray:
    """Mean log-probability of each target sequence from its rows of logits (concatenated)."""
    flat = torch.tensor([t for seq in targets for t in seq], device=logits.device)
    log_p = torch.log_softmax(logits.float(), dim=-1).gather(-1, flat[:, None])[:, 0]
    return np.array([part.mean().item() for part in torch.split(log_p, [len(t) for t in targets])])


def _share_right(scores: list[np.ndarray], questions: Sequence[ChoiceQuestion]) -> float:
    """Share of questions whose highest-scoring option is the answer (scores in option order)."""
    table = np.concatenate(scores).reshape(len(questions), -1)
    answers = np.array([q.answer for q in questions])
    return float(np.mean(np.argmax(table, axis=1) == answers))


@torch.inference_mode()
def text_choice_accuracy(
    teacher: Teacher, rows: Sequence[PreparedRow], questions: Sequence[ChoiceQuestion]
) -> float:
    """The teacher reading each prefix: the same for every student, so computed once."""
    teacher_lm = TextLM(teacher.model)
    vocab = len(teacher.tokenizer)
    pad = teacher.tokenizer.pad_token_id
    pad_id = 0 if pad is None else int(pad)
    pairs = [(q.row, c) for q in questions for c in q.choices]
    scores = []
    with Progress("evaluation: teacher reads the choices", len(pairs), "options") as progress:
        for start in range(0, len(pairs), _CHOICE_BATCH):
            part = pairs[start : start + _CHOICE_BATCH]
            targets = [list(c) for _, c in part]
            hidden = teacher_lm.continuation_hidden(
                [rows[r].prefix_ids for r, _ in part], targets, pad_id
            )
            scores.append(_mean_log_likelihood(teacher_lm.logits(hidden)[:, :vocab], targets))
            progress.update(len(part))
    return _share_right(scores, questions)


@torch.inference_mode()
def speech_choice_accuracy(teacher: Teacher, student: SpeechAdaptedLM, eval_set: EvalSet) -> float:
    """The student hearing each prefix: each clip is encoded once and its embeddings are
    read before every option (encoding per option cost a third of an evaluation)."""
    vocab = len(teacher.tokenizer)
    questions = eval_set.questions
    width = len(questions[0].choices)
    per_call = max(1, _CHOICE_BATCH // width)
    scores = []
    with Progress("evaluation: student hears the questions", len(questions), "questions") as bar:
        for start in range(0, len(questions), per_call):
            part = questions[start : start + per_call]
            audio = [eval_set.rows[q.row].audio for q in part]
            embeds, _ = student.encode_audio(audio)
            lengths = [student.audio_embed_length(len(clip)) for clip in audio]
            owner = [i for i, q in enumerate(part) for _ in q.choices]
            targets = [list(c) for q in part for c in q.choices]
            hidden = student.hidden_after_audio(
                embeds.index_select(0, torch.tensor(owner, device=embeds.device)),
                [lengths[i] for i in owner],
                targets,
            )
            logits = student.text_lm.logits(hidden)[:, :vocab]
            scores.append(_mean_log_likelihood(logits, targets))
            bar.update(len(part))
    return _share_right(scores, questions)


def evaluate(teacher: Teacher, student: SpeechAdaptedLM, eval_set: EvalSet) -> Evaluation:
    """Misalignment (mean over scored rows and per domain), forgetting and both accuracies."""
    results = scorer_for(teacher, student).score(score_items(eval_set.items))
    by_domain: dict[str, list[float]] = defaultdict(list)
    forgetting: list[float] = []
    unscored: Counter[str] = Counter()
    for item, result in zip(eval_set.items, results, strict=True):
        if result.status != STATUS_OK or result.misalignment is None:
            unscored[result.status] += 1
            continue
        by_domain[item.domain].append(result.misalignment)
        forgetting.append(result.forgetting or 0.0)
    values = [v for vs in by_domain.values() for v in vs]
    text_accuracy = eval_set.text_accuracy
    speech_accuracy = speech_choice_accuracy(teacher, student, eval_set)
    return Evaluation(
        misalignment=float(np.mean(values)),
        forgetting=float(np.mean(forgetting)),
        by_domain={d: float(np.mean(v)) for d, v in sorted(by_domain.items())},
        text_accuracy=text_accuracy,
        speech_accuracy=speech_accuracy,
        scored=len(values),
        unscored=dict(unscored),
    )
