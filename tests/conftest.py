"""Shared fixtures: an offline, isolated environment and one real end-to-end run per session."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Before anything imports Prefect or Hugging Face: no network, no writes to the user's home.
_SESSION_TMP = Path(tempfile.mkdtemp(prefix="saladpipe-tests-"))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["PREFECT_HOME"] = str(_SESSION_TMP / "prefect-client")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.pop("PREFECT_API_URL", None)
os.environ.setdefault("SALADPIPE_CACHE", str(_SESSION_TMP / "cache"))

import pytest  # noqa: E402

from tests.factories import E2ERun, run_small_e2e  # noqa: E402


@pytest.fixture(scope="session")
def session_tmp() -> Path:
    return _SESSION_TMP


@pytest.fixture(scope="session")
def e2e_run(tmp_path_factory: pytest.TempPathFactory) -> E2ERun:
    """One real `saladpipe run` on a small corpus, shared by the end-to-end assertions.

    No PREFECT_API_URL is set, so the command starts (and stops) its own local server.
    """
    return run_small_e2e(tmp_path_factory.mktemp("e2e"))
