"""The report a model build leaves beside its models (`build.json`): what was trained, how
well, in how long, with what.

`saladpipe models build` writes it; a run reads it to say in its log and manifest what
the builtin trained models are, `saladpipe models build` prints it, and the experiment
keeps it with its results. One typed form for all of them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from saladpipe.data_schemas.errors import SaladpipeError
from saladpipe.data_schemas.io import write_text

REPORT_FILE = "build.json"


@dataclass(frozen=True)
class TeacherReport:
    """The teacher's training texts and its held-out quality against a unigram model."""

    train_texts: int
    perplexity: float
    unigram_perplexity: float
    tokens: int
    texts: int


@dataclass(frozen=True)
class Stage1Report:
    """Stage I of the student: what it heard and how its distillation loss went."""

    heard_domains: list[str]
    texts: int
    spoken: int
    speech_rejected: dict[str, int]
    trained_rows: int
    refused_rows: dict[str, int]
    epoch_losses: list[float]


@dataclass(frozen=True)
class BuildReport:
    """One build of a recipe's teacher and student."""

    saladpipe: str
    recipe_key: str
    recipe: dict[str, Any]
    teacher: TeacherReport
    stage1: Stage1Report
    seconds: dict[str, float] = field(default_factory=dict)
    versions: dict[str, Any] = field(default_factory=dict)

    def write(self, folder: Path) -> Path:
        return write_text(json.dumps(asdict(self), indent=2) + "\n", folder / REPORT_FILE)

    @classmethod
    def read(cls, folder: Path) -> BuildReport:
        """The report of a built folder (the parent of its teacher/ and student/)."""
        path = folder / REPORT_FILE
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                **{
                    **raw,
                    "teacher": TeacherReport(**raw["teacher"]),
                    "stage1": Stage1Report(**raw["stage1"]),
                }
            )
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise SaladpipeError(f"cannot read build report {path}: {exc}") from None
