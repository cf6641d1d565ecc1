"""Task runner and concurrency settings, `serve` arguments and prefect.yaml, without a run."""

from __future__ import annotations

import importlib.util
import inspect
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from prefect import Flow
from prefect.client.schemas.schedules import CronSchedule
from prefect.task_runners import ThreadPoolTaskRunner
from prefect_dask import DaskTaskRunner

from saladpipe.cli import main
from saladpipe.cli.preflight import Folder, choose_round
from saladpipe.data_schemas.config import PrefectSection, RunConfig, parse_config
from saladpipe.data_schemas.errors import ConfigError
from saladpipe.data_schemas.heavy import Heavy
from saladpipe.data_schemas.layout import RunLayout
from saladpipe.flows import resources, runners
from tests import REPO

BASE = '[corpus]\nbuiltin = "wordnet-domains"\n'


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (
            'task_runner = "process"',
            "prefect.task_runner: Input should be 'thread' or 'dask' (got 'process')",
        ),
        (
            'dask_address = "tcp://h:8786"',
            "prefect: prefect.dask_address and prefect.dask_workers need "
            "prefect.task_runner = 'dask'",
        ),
        ('task_runner = "dask"\ndask_workers = 0', "prefect.dask_workers: Input should be"),
        ('task_runner = "dask"\ndask_address = "h:8786"', "prefect.dask_address: String should"),
        (
            'task_runner = "dask"\ndask_address = "tcp://h:8786"\ndask_workers = 4',
            "prefect.dask_workers sizes a local cluster",
        ),
    ],
)
def test_bad_prefect_settings_are_one_line_with_exit_2(
    setting: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "run.toml"
    config.write_text(f"{BASE}[prefect]\n{setting}\n", encoding="utf-8")
    assert main(["run", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_the_configured_task_runner() -> None:
    thread = runners.task_runner(PrefectSection())
    assert isinstance(thread, ThreadPoolTaskRunner)
    assert thread._max_workers == runners.THREAD_WORKERS
    local = runners.task_runner(PrefectSection(task_runner="dask", dask_workers=3))
    assert isinstance(local, DaskTaskRunner) and local.address is None
    assert local.cluster_kwargs == {"n_workers": 3, "processes": True, "threads_per_worker": 1}
    remote = runners.task_runner(PrefectSection(task_runner="dask", dask_address="tcp://h:8786"))
    assert isinstance(remote, DaskTaskRunner) and remote.address == "tcp://h:8786"
    assert remote.cluster_kwargs == {}


def _config(tts: str = "", models: str = "") -> RunConfig:
    return parse_config(f"{BASE}[tts]\n{tts}\n[models]\n{models}\n", "test", Path.cwd())


def test_gpu_and_cpu_engine_tags_follow_the_devices() -> None:
    gpu, cpu = runners.GPU_TAG, runners.CPU_TTS_TAG
    piper = _config()
    assert runners.stage_tags(piper, cuda_available=False) == runners.StageTags((), (cpu,))
    # Piper on device auto stays on the CPU; scoring moves to the GPU.
    assert runners.stage_tags(piper, cuda_available=True) == runners.StageTags((gpu,), (cpu,))
    coqui = _config('engine = "coqui"')
    assert runners.stage_tags(coqui, cuda_available=True).tts == (gpu,)
    assert runners.stage_tags(coqui, cuda_available=False).tts == (cpu,)
    mixed = _config('voices = [{engine = "coqui"}, {engine = "espeak"}]')
    assert runners.stage_tags(mixed, cuda_available=True).tts == (gpu, cpu)
    pinned = _config('device = "cuda:1"', 'device = "cpu"')
    assert runners.stage_tags(pinned, cuda_available=False) == runners.StageTags((), (gpu,))


def test_limits_a_run_sets_on_its_own_server() -> None:
    thread = PrefectSection()
    assert runners.local_limits(thread, gpus=0) == {}
    assert runners.local_limits(thread, gpus=2) == {runners.GPU_TAG: 2}
    local = PrefectSection(task_runner="dask", dask_workers=3)
    assert runners.local_limits(local, gpus=1) == {runners.GPU_TAG: 1, runners.CPU_TTS_TAG: 3}
    remote = PrefectSection(task_runner="dask", dask_address="tcp://h:8786")
    assert runners.local_limits(remote, gpus=0) == {}


def test_remote_workers_and_a_loopback_server_are_warned_about() -> None:
    remote = PrefectSection(task_runner="dask", dask_address="tcp://10.0.0.5:8786")
    warning = runners.unreachable_server_warning(remote, own_server=True)
    assert warning is not None and "prefect.api_url" in warning
    assert runners.unreachable_server_warning(remote, own_server=False) is None
    here = PrefectSection(task_runner="dask", dask_address="tcp://127.0.0.1:8786")
    assert runners.unreachable_server_warning(here, own_server=True) is None


@dataclass(frozen=True)
class SlowModel(Heavy[object]):
    """A heavy object that takes a while to build, as a model does."""

    name: str
    kind = "slow_model"

    def build(self) -> object:
        time.sleep(0.2)
        return object()


def test_threads_asking_at_once_share_one_build() -> None:
    got: list[object] = []
    threads = [
        threading.Thread(target=lambda: got.append(resources.obtain(SlowModel("m"))))
        for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 6 and all(g is got[0] for g in got)
    assert resources.built["slow_model"] == 1
    assert resources.obtain(SlowModel("other")) is not got[0]
    assert resources.built["slow_model"] == 2
    assert resources.obtain(SlowModel("m")) is got[0]  # an equal spec: the same object


def test_serve_refuses_a_bad_cron_and_a_missing_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "run.toml"
    config.write_text(BASE, encoding="utf-8")
    assert main(["serve", str(config), "--cron", "every night"]) == 2
    assert capsys.readouterr().err == (
        "saladpipe: --cron 'every night': Invalid cron string: \"every night\"\n"
    )
    with pytest.raises(SystemExit) as usage:
        main(["serve", str(config)])
    assert usage.value.code == 2


def test_a_scheduled_run_picks_round_0_and_refuses_a_foreign_folder(tmp_path: Path) -> None:
    config = parse_config(BASE, "test", tmp_path, [f'run.output_dir="{tmp_path / "run"}"'])
    layout = RunLayout(tmp_path / "run")
    assert choose_round(layout, config, Folder.SCHEDULED) == (0, False)  # no folder yet
    layout.state.mkdir(parents=True)
    assert choose_round(layout, config, Folder.SCHEDULED) == (0, False)  # a Prefect database
    (layout.root / "stray.parquet").write_bytes(b"")
    with pytest.raises(ConfigError, match="holds no attempt at this config"):
        choose_round(layout, config, Folder.SCHEDULED)


def test_prefect_yaml_names_an_existing_flow_and_its_parameters() -> None:
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text(encoding="utf-8"))
    assert spec["deployments"]
    for deployment in spec["deployments"]:
        path, _, name = deployment["entrypoint"].partition(":")
        module_spec = importlib.util.spec_from_file_location("entrypoint", REPO / path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        flow = getattr(module, name)
        assert isinstance(flow, Flow)
        assert set(deployment["parameters"]) <= set(inspect.signature(flow.fn).parameters)
        assert (REPO / deployment["parameters"]["config_path"]).is_file()
        assert deployment["work_pool"]["name"] == "saladpipe-gpu"
        for schedule in deployment["schedules"]:
            CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])
