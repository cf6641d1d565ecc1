"""Orchestration for real: a Dask cluster run equals the single-process run, `saladpipe
serve` registers and runs a scheduled deployment, prefect.yaml deploys, and tag
concurrency limits cap what they name and nothing else.

All runs share one local Prefect server (started once, like `saladpipe run` does) to
save its start-up; the voice is eSpeak NG, whose audio is the same in every process
(Piper's VITS noise is not seeded, so two Piper runs never match bit for bit).
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from saladpipe.cli import main
from saladpipe.cli.deployment import FLOW_NAME
from saladpipe.data_schemas.layout import RunLayout
from saladpipe.data_schemas.tables import strings
from saladpipe.flows import resources, runners
from saladpipe.flows.server import local_prefect_server
from saladpipe.pipeline import ledger
from tests import REPO
from tests.factories import small_wordnet_corpus, write_config, write_jsonl

pytestmark = pytest.mark.e2e


ESPEAK = {"tts": {"engine": "espeak", "voice": "en-us"}}
# Stages whose tables the two runs must share, and the folders they write.
COMPARED = ("embeddings", "clusters", "probes", "scores", "selection", "shards")


@pytest.fixture(scope="module")
def api_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One local Prefect server for the module, named by PREFECT_API_URL to every run."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    state = tmp_path_factory.mktemp("prefect-state")
    with local_prefect_server(state) as url, pytest.MonkeyPatch.context() as patch:
        patch.setenv("PREFECT_API_URL", url)
        yield url
        # Send what this process logged while the server still runs, not at exit.
        APILogWorker.drain_all(timeout=10, at_exit=False)
        EventsWorker.drain_all(timeout=10, at_exit=False)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("orchestration-corpus")
    rows = small_wordnet_corpus(per_domain=12).to_pylist()
    keep = {"noun.animal", "noun.food", "verb.motion", "noun.time"}
    return write_jsonl(tmp / "corpus.jsonl", [r for r in rows if r["domain"] in keep])


def _assert_same_table(a: pa.Table, b: pa.Table, name: str) -> None:
    """Equal tables; floats to a relative 1e-6, as a reduction split over a different number
    of threads (1 per Dask worker, 2 in the flow's process) rounds float32 differently."""
    assert a.schema.names == b.schema.names, name
    assert a.num_rows == b.num_rows, name
    for column in a.schema.names:
        x, y = a.column(column), b.column(column)
        kind = x.type.value_type if pa.types.is_list(x.type) else x.type
        if pa.types.is_floating(kind):
            flat_x, flat_y = (pa.concat_arrays(c.chunks) for c in (x, y))
            if pa.types.is_list(x.type):
                assert isinstance(flat_x, pa.ListArray) and isinstance(flat_y, pa.ListArray)
                assert flat_x.value_lengths().equals(flat_y.value_lengths()), (name, column)
                flat_x, flat_y = flat_x.flatten(), flat_y.flatten()
            np.testing.assert_allclose(
                flat_x.to_numpy(zero_copy_only=False),
                flat_y.to_numpy(zero_copy_only=False),
                rtol=1e-6,
                err_msg=f"{name}: {column}",
            )
        else:
            assert x.equals(y), (name, column)


def test_a_dask_cluster_run_equals_the_single_process_run(
    api_url: str, corpus: Path, tmp_path: Path
) -> None:
    import dask
    from distributed import Client, LocalCluster

    single = write_config(tmp_path / "single.toml", corpus, tmp_path / "single", **ESPEAK)
    assert main(["run", str(single)]) == 0
    built_here = dict(resources.built)

    def worker_builds() -> dict[str, int]:
        from saladpipe.flows import resources

        return dict(resources.built)

    with (
        dask.config.set({"distributed.worker.daemon": False}),
        LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        dask_config = write_config(
            tmp_path / "dask.toml",
            corpus,
            tmp_path / "dask",
            **ESPEAK,
            prefect={"task_runner": "dask", "dask_address": cluster.scheduler_address},
        )
        assert main(["run", str(dask_config)]) == 0
        builds = client.run(worker_builds)

    # The shards ran on the workers, each building every model it used once (2 embed,
    # 2 probe-TTS, 2 score and 3 output shards), and nothing was built in this process.
    assert dict(resources.built) == built_here
    assert len(builds) == 2
    assert all(n == 1 for counts in builds.values() for n in counts.values()), builds
    for kind in ("embedder", "speech_service", "scorer"):
        assert 1 <= sum(counts.get(kind, 0) for counts in builds.values()) <= 2, (kind, builds)

    a, b = tmp_path / "single", tmp_path / "dask"
    for folder in COMPARED:
        names = sorted(p.name for p in (a / folder).glob("*.parquet"))
        assert names == sorted(p.name for p in (b / folder).glob("*.parquet")), folder
        assert names, folder
        for name in names:
            _assert_same_table(
                pq.read_table(a / folder / name), pq.read_table(b / folder / name), name
            )
    selected = pq.read_table(b / "selection" / "round-000.parquet").column("text_id")
    shard_ids = pq.read_table(b / "shards", columns=["text_id"]).column("text_id")
    assert len(selected) == 18 and sorted(strings(shard_ids)) == sorted(strings(selected))


def _read_deployment(api_url: str, name: str) -> Any:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as c:
        try:
            return c.read_deployment_by_name(name)
        except ObjectNotFound:
            return None


def test_serve_registers_a_cron_deployment_whose_run_adds_a_round(
    api_url: str, corpus: Path, tmp_path: Path
) -> None:
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    config = write_config(tmp_path / "served.toml", corpus, tmp_path / "served", **ESPEAK)
    log_path = tmp_path / "serve.log"
    env = {**os.environ, "PREFECT_API_URL": api_url, "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    command = [sys.executable, "-m", "saladpipe.cli", "serve", str(config), "--cron", "0 3 * * *"]
    with log_path.open("wb") as log:
        serving = subprocess.Popen(
            [*command, "--name", "nightly"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    name = f"{FLOW_NAME}/nightly"
    try:
        deadline = time.monotonic() + 180
        while (deployment := _read_deployment(api_url, name)) is None:
            assert serving.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(1)
        assert [s.schedule.cron for s in deployment.schedules] == ["0 3 * * *"]
        assert all(s.active for s in deployment.schedules)
        assert deployment.parameters == {"config_path": str(config.resolve()), "overrides": []}
        assert deployment.entrypoint == "saladpipe.cli.deployment.scheduled_round"
        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            flow_run = run_deployment(name, timeout=300)
        assert isinstance(flow_run, FlowRun)  # called from sync code: the run, not a coroutine
        assert flow_run.state is not None and flow_run.state.is_completed(), log_path.read_text()
        # The config is read at every run: a bad strategy in it fails the next run in its
        # pre-flight check, before anything is ingested into the (new) folder it names.
        served = config.read_text(encoding="utf-8")
        bad = served.replace('strategy = "salad"', 'strategy = "no-such-strategy"')
        assert bad != served
        config.write_text(bad.replace(str(tmp_path / "served"), str(tmp_path / "bad")))
        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            failed = run_deployment(name, timeout=300)
        assert isinstance(failed, FlowRun)
        assert failed.state is not None and failed.state.is_failed()
        assert "select.strategy" in str(failed.state.message), failed.state.message
        assert not (tmp_path / "bad" / "corpus").exists()
    finally:
        serving.send_signal(signal.SIGTERM)
        serving.wait(timeout=60)
    assert serving.returncode == 0, log_path.read_text()
    records = ledger.finished_rounds(RunLayout(tmp_path / "served"))
    assert [r.round for r in records] == [0] and records[0].synthesized == 18
    assert main(["verify", str(tmp_path / "served")]) == 0


def test_prefect_yaml_deploys_the_scheduled_round_to_the_gpu_pool(api_url: str) -> None:
    env = {**os.environ, "PREFECT_API_URL": api_url, "SALADPIPE_HOME": str(REPO)}
    prefect = [sys.executable, "-m", "prefect"]
    pool = subprocess.run(
        [*prefect, "work-pool", "create", "saladpipe-gpu", "--type", "process"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert pool.returncode == 0, pool.stdout + pool.stderr
    deploy = subprocess.run(
        [*prefect, "--no-prompt", "deploy", "--all"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    deployment = _read_deployment(api_url, f"{FLOW_NAME}/nightly-round")
    assert deployment.work_pool_name == "saladpipe-gpu"
    assert [s.schedule.cron for s in deployment.schedules] == ["0 2 * * *"]
    assert deployment.pull_steps == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(REPO)}}
    ]
    assert (REPO / deployment.parameters["config_path"]).is_file()


def test_tag_limits_cap_what_they_name_and_a_missing_limit_blocks_nothing(api_url: str) -> None:
    from prefect import flow, task
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

    @task
    def hold(seconds: float) -> tuple[float, float]:
        start = time.monotonic()
        time.sleep(seconds)
        return start, time.monotonic()

    runner: TaskRunner[Any] = ThreadPoolTaskRunner(max_workers=3)

    @flow(task_runner=runner)
    def three_at_once(tag: str) -> list[tuple[float, float]]:
        futures = [hold.with_options(tags=[tag]).submit(2.0) for _ in range(3)]
        return [f.result() for f in futures]

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        runners.set_limits({runners.CPU_TTS_TAG: 1})
        try:
            capped = sorted(three_at_once(runners.CPU_TTS_TAG))
        finally:
            with get_client(sync_client=True) as client:
                client.delete_concurrency_limit_by_tag(runners.CPU_TTS_TAG)
        free = sorted(three_at_once(runners.GPU_TAG))  # no limit for this tag on the server
    assert all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(capped))
    assert max(start for start, _ in free) < min(end for _, end in free)
