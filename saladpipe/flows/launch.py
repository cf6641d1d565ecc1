"""Starting a round: the run folder's lock, the Prefect API (a local server when none is
configured), the task runner and its concurrency limits, and cleaning up after it."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from saladpipe.data_schemas.config import RunConfig
from saladpipe.data_schemas.io import remove_stale_temporaries
from saladpipe.data_schemas.layout import RunLayout
from saladpipe.data_schemas.manifest import Manifest
from saladpipe.flows import resources, runners
from saladpipe.flows.lock import RunLock
from saladpipe.flows.round import Publisher, salad_round
from saladpipe.flows.server import prefect_api
from saladpipe.models.loading import BuiltinDirs


@dataclass(frozen=True)
class RoundResult:
    """What a finished round returns to its caller."""

    run_dir: Path
    manifest: Manifest


def run_round(
    config: RunConfig,
    round_index: int = 0,
    trained: BuiltinDirs = (),
    publish: Publisher | None = None,
) -> RoundResult:
    """Run the flow with the configured task runner against the configured Prefect API, or
    a local server started for it (which then gets the run's concurrency limits)."""
    layout = RunLayout(config.output_path())
    layout.state.mkdir(parents=True, exist_ok=True)
    log = logging.getLogger("saladpipe")
    log.setLevel(logging.INFO)
    # prefect_api starts a local server exactly when neither of these names one.
    own_server = not (config.prefect.api_url or os.environ.get("PREFECT_API_URL"))
    if warning := runners.unreachable_server_warning(config.prefect, own_server):
        log.warning(warning)
    round_flow = salad_round.with_options(task_runner=runners.task_runner(config.prefect))
    try:
        with (
            RunLock(layout.state),
            prefect_api(config.prefect.api_url, layout.state),
            runners.worker_settings(config.prefect),
        ):
            remove_stale_temporaries(layout.root, keep=layout.state)
            if own_server:
                runners.set_limits(runners.local_limits(config.prefect, torch.cuda.device_count()))
            manifest: Any = round_flow(config, round_index, trained, publish)
    finally:
        resources.close_all()
    return RoundResult(layout.root, manifest)
