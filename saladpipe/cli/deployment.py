"""Scheduled rounds: the flow that a deployment runs, and `saladpipe serve` for one box.

A deployment's parameters must be plain JSON, and its flow is imported afresh for
every run, so the deployed flow takes the config's path (and `--set` overrides) and
reads it at each run: an edit to the file, such as a newer student checkpoint,
applies from the next run on. Each run goes through the same pre-flight check as
`saladpipe run` (a bad strategy fails before ingest) and adds one round to the run
folder: round 0 in a new folder, then the next round of its ledger (re-scored with the
configured student, a fresh budget, nothing picked twice). The round itself is the
`saladpipe-round` flow, run as a subflow with the configured task runner.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger

from saladpipe.audit.artifacts import publish_audit_summary
from saladpipe.cli.preflight import Folder, preflight
from saladpipe.data_schemas.config import RunConfig, load_config
from saladpipe.data_schemas.layout import RunLayout
from saladpipe.flows.launch import run_round
from saladpipe.flows.server import prefect_api

FLOW_NAME = "saladpipe-scheduled-round"


@flow(name=FLOW_NAME)
def scheduled_round(config_path: str, overrides: list[str] | None = None) -> dict[str, int]:
    """Read the config now and add one round to its run folder; returns the round's counts."""
    ready = preflight(load_config(Path(config_path), overrides or []), Folder.SCHEDULED)
    layout = RunLayout(ready.config.output_path())
    get_run_logger().info("%s: round %d in %s", config_path, ready.round_index, layout.root)
    result = run_round(ready.config, ready.round_index, ready.trained, publish_audit_summary)
    return dict(result.manifest.counts)


def serve_rounds(
    config: RunConfig, config_path: Path, overrides: list[str], cron: str, name: str
) -> None:
    """Register a deployment of `scheduled_round` on the cron schedule and run its runs here,
    one at a time, until SIGINT or SIGTERM (which pauses the schedule).

    Without a configured Prefect API a local server is started for as long as this
    serves, with its database in the run folder's state/ (as `saladpipe run` does).
    """
    from prefect.types.entrypoint import EntrypointType

    layout = RunLayout(config.output_path())
    layout.state.mkdir(parents=True, exist_ok=True)
    with prefect_api(config.prefect.api_url, layout.state):
        scheduled_round.serve(
            name=name,
            cron=cron,
            parameters={"config_path": str(config_path), "overrides": overrides},
            limit=1,
            # Imported by module name, so the runs need the package, not this working folder.
            entrypoint_type=EntrypointType.MODULE_PATH,
        )
