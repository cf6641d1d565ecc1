"""The executor: runs stage declarations (`pipeline/stage.py`) as Prefect tasks.

What every stage gets without writing it: one Prefect task per call, submitted together
for the shards of a stage and awaited in order; the concurrency tags of what it holds;
heavy objects built once per worker from the specs it is passed (`resources.py`);
completion records (`completion.py`), so a resumed run keeps a call whose inputs and
kept files are unchanged and logs it as kept; scratch files deleted once the reader is
recorded; and, for a stage that can give up, retries with backoff and then quarantine
of its rows instead of a failed run.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from prefect import Task, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import MissingContextError
from prefect.futures import wait
from prefect.runtime import task_run
from prefect.tasks import exponential_backoff

from saladpipe.data_schemas.heavy import Heavy
from saladpipe.data_schemas.layout import RunLayout
from saladpipe.flows import resources
from saladpipe.flows.completion import CompletionStore, paths_in
from saladpipe.pipeline.stage import Resource, Stage
from saladpipe.progress import logger

R = TypeVar("R")

# What the log says of a call whose record and kept files are intact.
KEPT = "finished earlier on the same inputs; kept"
# A stage that can give up is tried again after 2 s, then 4 s (a passing reason: a full
# disk being cleaned, a GPU briefly out of memory), then its rows go to quarantine.
TASK_RETRIES = 2
RETRY_BACKOFF_S = 2.0


def check_declared(stage: Stage[Any], arguments: Mapping[str, Any]) -> None:
    """Every argument that holds a file is declared as read, kept or scratch: a stage
    cannot read a file that its resume key does not know about. (A layout names where the
    stage writes; a heavy spec is keyed as a whole.)"""
    declared = {*stage.reads, *stage.keeps, *stage.scratch, *stage.unkeyed}
    files = [
        name
        for name, value in arguments.items()
        if not isinstance(value, RunLayout | Heavy) and any(paths_in(value))
    ]
    if undeclared := sorted(set(files) - declared):
        raise TypeError(f"stage {stage.name}: file arguments {undeclared} are not declared")
    specs = {name for name, value in arguments.items() if isinstance(value, Heavy)}
    if specs - set(stage.needs):
        raise TypeError(f"stage {stage.name}: heavy specs {sorted(specs)} are not declared")


def call_key(store: CompletionStore, stage: Stage[Any], arguments: Mapping[str, Any]) -> str:
    """The key of one call: the stage's code and arguments, read files by content."""
    by_path = (*stage.keeps, *stage.scratch)
    return store.key(stage.name, stage.run, arguments, by_path, stage.unkeyed)


def execute(stage: Stage[R], layout: RunLayout, arguments: dict[str, Any]) -> R:
    """One call of a stage, in whichever process runs the task (see the module docstring)."""
    if not stage.resumable:
        return stage.run(**_built(arguments))
    store = CompletionStore(layout)
    key = call_key(store, stage, arguments)
    done = store.lookup(stage.name, key)
    if done is not None:
        run_logger().info("%s: %s", stage.name, KEPT)
        _remove_scratch(stage, arguments)  # what a kill right after the record left
        result: R = done.result
        return result
    try:
        result = stage.run(**_built(arguments))
    except Exception as exc:
        if stage.give_up is None or task_run.get_run_count() <= TASK_RETRIES:
            raise
        detail = f"{stage.name} failed {TASK_RETRIES + 1} times: {type(exc).__name__}: {exc}"
        run_logger().error("%s; its rows go to quarantine", detail)
        given_up: R = stage.give_up(arguments, detail)
        return given_up  # not recorded: a resumed run tries it again
    kept = [*paths_in(result), *(p for name in stage.keeps for p in paths_in(arguments[name]))]
    store.record(stage.name, key, result, kept)
    _remove_scratch(stage, arguments)
    return result


def run_logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """The task's or flow's Prefect logger inside a run; saladpipe's logger outside one."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logger


def _built(arguments: dict[str, Any]) -> dict[str, Any]:
    """The arguments with every heavy spec replaced by its object, built once per worker."""
    return {k: resources.obtain(v) if isinstance(v, Heavy) else v for k, v in arguments.items()}


def _remove_scratch(stage: Stage[Any], arguments: Mapping[str, Any]) -> None:
    for name in stage.scratch:
        for path in paths_in(arguments[name]):
            path.unlink(missing_ok=True)


class Executor(ABC):
    """Runs the stages of one round of one run folder; the flow's only view of execution."""

    def __init__(self, layout: RunLayout) -> None:
        self.layout = layout

    def run(self, stage: Stage[R], **arguments: Any) -> R:
        """One call; its result once it has finished."""
        return self._calls(stage, [arguments])[0]

    def map(self, stage: Stage[R], shards: Mapping[str, Sequence[Any]], **shared: Any) -> list[R]:
        """One call per shard: the i-th call gets the i-th item of every list in `shards`
        and every `shared` argument as it is."""
        columns = list(shards.values())
        if len({len(column) for column in columns}) > 1:
            raise ValueError(f"stage {stage.name}: per-shard arguments of unequal length")
        rows = zip(*columns, strict=True)
        return self._calls(
            stage, [{**dict(zip(shards, row, strict=True)), **shared} for row in rows]
        )

    def finished(self, stage: Stage[Any], **arguments: Any) -> bool:
        """Whether this call has an intact completion record; runs nothing."""
        store = CompletionStore(self.layout)
        return store.lookup(stage.name, call_key(store, stage, arguments)) is not None

    def _calls(self, stage: Stage[R], calls: Sequence[dict[str, Any]]) -> list[R]:
        for arguments in calls:
            check_declared(stage, arguments)
        return self._execute(stage, calls)

    @abstractmethod
    def _execute(self, stage: Stage[R], calls: Sequence[dict[str, Any]]) -> list[R]:
        """Run every call; their results in order."""


class PrefectExecutor(Executor):
    """Each call a Prefect task with the concurrency tags of what its stage holds."""

    def __init__(self, layout: RunLayout, tags: Mapping[Resource, tuple[str, ...]]) -> None:
        super().__init__(layout)
        self.tags = tags
        self._tasks: dict[str, Task[..., Any]] = {}

    def _execute(self, stage: Stage[R], calls: Sequence[dict[str, Any]]) -> list[R]:
        """The calls submitted together, so the task runner runs them at once; their results
        in order once every one has finished: a failed call raises only after the others
        have written theirs, so a resumed run finds them."""
        prefect_task = self._task(stage)
        futures = [prefect_task.submit(stage, self.layout, arguments) for arguments in calls]
        wait(futures)
        return [future.result() for future in futures]

    def _task(self, stage: Stage[Any]) -> Task[..., Any]:
        if stage.name not in self._tasks:
            retries = TASK_RETRIES if stage.give_up is not None else 0
            self._tasks[stage.name] = task(
                name=stage.name,
                tags=list(self.tags.get(stage.resource, ())),
                cache_policy=NO_CACHE,
                persist_result=False,
                retries=retries,
                retry_delay_seconds=exponential_backoff(RETRY_BACKOFF_S)(retries) if retries else 0,
            )(execute)
        return self._tasks[stage.name]


class InProcessExecutor(Executor):
    """Each call in turn in this process, without Prefect: the stages' bare cost, timed per
    stage in `seconds` (bench/orchestration.py compares it with the Prefect run)."""

    def __init__(self, layout: RunLayout) -> None:
        super().__init__(layout)
        self.seconds: dict[str, float] = {}

    def _execute(self, stage: Stage[R], calls: Sequence[dict[str, Any]]) -> list[R]:
        start = time.perf_counter()
        results = [execute(stage, self.layout, arguments) for arguments in calls]
        self.seconds[stage.name] = self.seconds.get(stage.name, 0.0) + time.perf_counter() - start
        return results
