"""The first model build runs before any flow: its progress must still be seen."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import saladpipe.training.build as build
from saladpipe.cli import default_config
from saladpipe.cli.preflight import trained_models
from saladpipe.progress import Progress, logger, progress_to_stderr


@pytest.fixture
def no_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Logging as a bare `saladpipe` process has it: no handler sees the lines (pytest's
    own capture handlers, which it attaches during the test, are not counted)."""
    monkeypatch.setattr(logger, "hasHandlers", lambda: False)


def test_progress_reaches_stderr_during_the_step_and_not_after(
    capsys: pytest.CaptureFixture[str], no_handlers: None
) -> None:
    level = logger.level
    with progress_to_stderr(), Progress("stage-I distillation", 2, "steps") as progress:
        progress.update(2)
    assert "stage-I distillation: 2/2 steps in" in capsys.readouterr().err
    logger.info("a line of the flow, which logs through its own handlers")
    assert "a line of the flow" not in capsys.readouterr().err
    assert logger.level == level
    assert not [h for h in logger.handlers if isinstance(h, logging.StreamHandler)]


def test_where_a_handler_sees_the_lines_each_prints_once(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under Prefect a console handler already sees the lines: no second one is added,
    and each line prints once."""
    own = logging.StreamHandler()  # writes to stderr, as Prefect's console handler does
    monkeypatch.setattr(logger, "handlers", [own])
    monkeypatch.setattr(logger, "propagate", False)
    before = list(logger.handlers)
    with progress_to_stderr():
        assert logger.handlers == before
        logger.info("train teacher: 94/1875 steps")
    assert capsys.readouterr().err.count("train teacher: 94/1875 steps") == 1


def test_the_run_s_model_build_logs_its_progress(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    no_handlers: None,
) -> None:
    """`saladpipe run` on the embedded default builds the trained models in its preflight,
    off a terminal too (CI, a scheduler): every progress line shows."""

    def fake_build(recipe: object, cache_root: Path) -> dict[str, Path]:
        logger.info("teacher: held-out perplexity 50.1")
        return {"trained-teacher": tmp_path / "t", "trained-student": tmp_path / "s"}

    monkeypatch.setattr(build, "ensure_models", fake_build)
    dirs = trained_models(default_config())
    assert dict(dirs) == {"trained-teacher": tmp_path / "t", "trained-student": tmp_path / "s"}
    assert "teacher: held-out perplexity 50.1" in capsys.readouterr().err
