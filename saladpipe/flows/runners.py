"""Where a round's per-shard tasks run, and how many may hold a GPU or a CPU engine at once.

The task runner comes from `[prefect]`: threads of the flow's own process, or a Dask
cluster (a local one started for the run, or a running scheduler). GPU and CPU-engine
tasks carry Prefect tags; a tag concurrency limit on the server (a global concurrency
limit named `tag:<tag>`) caps how many such task runs hold a slot at once, across
every worker of every flow that uses the server. A tag without a limit caps nothing,
so a server where nobody created one neither blocks nor fails.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from saladpipe.data_schemas.config import PrefectSection, RunConfig
from saladpipe.tts.registry import voice_engines

GPU_TAG = "saladpipe-gpu"
CPU_TTS_TAG = "saladpipe-cpu-tts"

# Shards at once in the thread runner. Each stage already spreads one shard over every
# core (PyTorch threads, TTS worker processes), so a second thread only fills the gaps
# (Parquet I/O, Python glue, a shard's start and end); more would oversubscribe the
# cores and, in a big run, start one thread per queued shard (Prefect's default).
THREAD_WORKERS = 2


def task_runner(prefect: PrefectSection) -> TaskRunner[Any]:
    """The configured task runner (not started: the flow starts and stops it)."""
    if prefect.task_runner == "thread":
        return ThreadPoolTaskRunner(max_workers=THREAD_WORKERS)
    from prefect_dask import DaskTaskRunner

    if prefect.dask_address is not None:
        return DaskTaskRunner(address=prefect.dask_address)
    # One single-threaded process per worker: the stages hold the GIL between native
    # calls, and each process loads its own copy of the models once.
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": prefect.dask_workers,
            "processes": True,
            "threads_per_worker": 1,
        }
    )


@contextlib.contextmanager
def worker_settings(prefect: PrefectSection) -> Iterator[None]:
    """Dask settings for the workers of a local cluster, which this process starts.

    Dask starts worker processes as daemons by default, and a daemon may not start
    processes of its own; the TTS stage runs its engines in worker processes.
    """
    if prefect.task_runner != "dask" or prefect.dask_address is not None:
        yield
        return
    import dask

    with dask.config.set({"distributed.worker.daemon": False}):
        yield


def unreachable_server_warning(prefect: PrefectSection, own_server: bool) -> str | None:
    """A warning when Dask workers on other machines would report to this machine's loopback."""
    if not own_server or prefect.dask_address is None:
        return None
    host = urlsplit(prefect.dask_address).hostname or ""
    if host in {"localhost", "127.0.0.1", "::1"}:
        return None
    return (
        f"prefect.dask_address {prefect.dask_address}: workers on other machines cannot reach "
        "this run's local Prefect server on 127.0.0.1; set prefect.api_url (or "
        "PREFECT_API_URL) to a server they can reach"
    )


@dataclass(frozen=True)
class StageTags:
    """The concurrency tags of the stages that hold a GPU or a CPU engine."""

    score: tuple[str, ...]
    tts: tuple[str, ...]


def _on_gpu(device: str, cuda_available: bool) -> bool:
    return device.startswith("cuda") or (device == "auto" and cuda_available)


def stage_tags(config: RunConfig, cuda_available: bool) -> StageTags:
    """Scoring on a GPU takes a GPU slot; synthesis a GPU slot for a voice on the GPU (as
    its engine says for the device setting: `TTSEngine.wants_gpu`) and a CPU-engine slot
    for a voice on the CPU.

    Devices are judged where the flow runs; with `auto`, a flow on a machine without a GPU
    tags nothing as GPU work even if its Dask workers have one.
    """
    score = (GPU_TAG,) if _on_gpu(config.models.device, cuda_available) else ()
    gpu_voice = [
        engine.wants_gpu(config.tts.device, cuda_available) for engine in voice_engines(config.tts)
    ]
    tts = ((GPU_TAG,) if any(gpu_voice) else ()) + ((CPU_TTS_TAG,) if not all(gpu_voice) else ())
    return StageTags(score, tts)


def local_limits(prefect: PrefectSection, gpus: int) -> dict[str, int]:
    """The limits a run sets on its own local server: one GPU task per GPU; one CPU-engine
    task per worker of a local Dask cluster.

    The thread runner gets no CPU limit: its process has one TTS service, which speaks
    one shard at a time with all of its worker processes.
    """
    limits = {GPU_TAG: gpus} if gpus > 0 else {}
    if prefect.task_runner == "dask" and prefect.dask_address is None:
        limits[CPU_TTS_TAG] = prefect.dask_workers
    return limits


def set_limits(limits: dict[str, int]) -> None:
    """Create or update tag concurrency limits on the current Prefect API."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        for tag, limit in limits.items():
            client.create_concurrency_limit(tag=tag, concurrency_limit=limit)
