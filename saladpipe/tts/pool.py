"""Worker processes that speak texts, each loading every voice of the run once.

Synthesis is CPU-bound (or holds a GPU); Python threads would not run it in
parallel and could not be stopped when an engine hangs. So each worker is a
process with its own engines, fed one job (a batch of texts for one voice) at a
time through a pipe. A job that takes longer than the timeout gets its worker
killed and replaced; a text that raised or timed out is tried again, alone, up
to the configured number of retries, then reported failed, and the run goes on.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing import get_context
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from saladpipe.data_schemas.config import VoiceSpec
from saladpipe.data_schemas.errors import ConfigError, SaladpipeError
from saladpipe.tts.base import EngineOptions, TTSEngine, VoiceInfo
from saladpipe.tts.render import Failed, Outcome, RenderSettings, Request, batch_size, render

EngineFactory = Callable[[VoiceSpec, EngineOptions], TTSEngine]

# Fewest texts a job sends a worker (rounded up to whole batches).
JOB_TEXTS = 8


class EngineStartError(SaladpipeError):
    """A worker could not load its voices."""


@dataclass(frozen=True)
class VoiceSetup:
    """One voice as a worker loads it: `engine(spec, options)`.

    The engine is resolved in the parent, not by name in the worker: a worker starts
    from the fork server and sees no registration the parent made, but a class travels
    by reference, so the worker imports its module (which registers it again).
    """

    engine: EngineFactory
    spec: VoiceSpec
    options: EngineOptions


@dataclass(frozen=True)
class VoiceReport:
    """What a loaded voice told its worker: recorded with clips and used to size jobs."""

    engine: str
    info: VoiceInfo
    sample_rate: int
    batch_size: int
    max_chars: int
    speakers: tuple[str, ...]


def _serve(
    conn: Connection,
    environment: dict[str, str],
    voices: Sequence[VoiceSetup],
    settings: RenderSettings,
) -> None:
    """A worker's life: load every voice, report, then render jobs until told to stop."""
    os.environ.clear()  # the caller's environment now, not the fork server's at its start
    os.environ.update(environment)
    # oneDNN (PyTorch's CPU convolutions) caches a compiled kernel per input shape, 1024 by
    # default; every text length is a new shape, so a worker's memory would grow for
    # thousands of clips. A small cache costs little: lengths rarely repeat anyway.
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16")
    try:
        engines = [voice.engine(voice.spec, voice.options) for voice in voices]
    except Exception as exc:
        conn.send(("failed", f"{type(exc).__name__}: {exc}", isinstance(exc, ConfigError)))
        return
    reports = [
        VoiceReport(
            e.name,
            e.voice,
            e.sample_rate,
            batch_size(e, settings),
            e.max_chars,
            tuple(e.speakers()),
        )
        for e in engines
    ]
    conn.send(("ready", reports))
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        voice, requests = job
        try:
            conn.send(("done", render(engines[voice], requests, settings), _rss_bytes()))
        except BrokenPipeError:
            return  # the run that asked is gone (killed): nobody to answer


def _rss_bytes() -> int:
    pages = Path("/proc/self/statm").read_text().split()[1]
    return int(pages) * os.sysconf("SC_PAGE_SIZE")


@dataclass
class _Worker:
    process: Any
    conn: Connection
    deadline: float
    ready: bool = False
    job: tuple[int, list[Request]] | None = None
    rss_bytes: int = 0


@dataclass
class _Run:
    """Bookkeeping of one `run` call."""

    requests: dict[int, Request]
    queue: deque[tuple[int, list[Request]]]
    notify: Callable[[Outcome], None]
    results: dict[int, Outcome] = field(default_factory=dict)
    attempts: Counter[int] = field(default_factory=Counter)


class WorkerPool:
    """`workers` processes with every voice loaded; `run` speaks a list of requests."""

    def __init__(
        self,
        voices: Sequence[VoiceSetup],
        settings: RenderSettings,
        workers: int = 1,
        timeout_s: float = 300.0,
        retries: int = 2,
        start_timeout_s: float = 900.0,
    ) -> None:
        self._args = (tuple(voices), settings)
        self._size = workers
        self.timeout_s = timeout_s
        self.retries = retries
        self._start_timeout_s = start_timeout_s
        # Workers fork from a server process that has imported this module once, so a
        # (re)started worker is ready in milliseconds plus its model load; unlike a plain
        # fork, no thread or CUDA state of the caller is copied.
        self._context = get_context("forkserver")
        self._context.set_forkserver_preload([__name__])
        # A slot is None after its worker was lost, until work needs it again.
        self._workers: list[_Worker | None] = []
        self.reports: list[VoiceReport] = []

    def start(self) -> WorkerPool:
        """Start every worker and wait until each has loaded its voices."""
        workers = [self._spawn() for _ in range(self._size)]
        self._workers = list(workers)
        for worker in workers:
            if not worker.conn.poll(max(0.0, worker.deadline - time.monotonic())):
                self.close()
                raise EngineStartError(
                    f"tts: a worker did not load its voices in {self._start_timeout_s:g} s"
                )
            self._started(worker, self._recv(worker))
        return self

    def close(self) -> None:
        """Stop every worker: ask the idle ones to finish, kill the rest."""
        workers = [w for w in self._workers if w is not None]
        for worker in workers:
            if worker.ready and worker.job is None:
                with contextlib.suppress(OSError):
                    worker.conn.send(None)
        for worker in workers:
            worker.process.join(5 if worker.ready and worker.job is None else 0)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()
        self._workers = []

    def worker_rss_bytes(self) -> list[int]:
        """Resident memory of each worker after its latest job (0 before its first)."""
        return [w.rss_bytes for w in self._workers if w is not None]

    def run(
        self, requests: Sequence[Request], on_outcome: Callable[[Outcome], None] | None = None
    ) -> list[Outcome]:
        """Speak every request; one final outcome each, in the order of `requests`."""
        if not self._workers:
            raise RuntimeError("WorkerPool.run before start")
        state = _Run(
            {r.index: r for r in requests},
            deque(self._jobs(requests)),
            on_outcome or (lambda outcome: None),
        )
        while state.queue or any(w and w.job for w in self._workers):
            self._dispatch(state)
            waiting = [w for w in self._workers if w and (w.job or not w.ready)]
            soonest = min(w.deadline for w in waiting)
            ready = wait([w.conn for w in waiting], max(0.0, soonest - time.monotonic()))
            for worker in waiting:
                if worker.conn in ready:
                    self._receive(worker, state)
                elif time.monotonic() >= worker.deadline:
                    limit = (
                        self._job_timeout_s(worker.job)
                        if worker.ready and worker.job
                        else self._start_timeout_s
                    )
                    self._lost(worker, state, "tts_timeout", f"no result in {limit:g} s")
        return [state.results[r.index] for r in requests]

    def _spawn(self) -> _Worker:
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=_serve,
            args=(child, dict(os.environ), *self._args),
            daemon=True,
            name="saladpipe-tts",
        )
        process.start()
        child.close()
        return _Worker(process, parent, time.monotonic() + self._start_timeout_s)

    def _drop(self, worker: _Worker) -> None:
        """Kill a hung or dead worker; its slot is filled again when work needs it."""
        worker.process.kill()
        worker.process.join()
        worker.conn.close()
        self._workers[self._workers.index(worker)] = None

    def _jobs(self, requests: Sequence[Request]) -> list[tuple[int, list[Request]]]:
        """Per voice, texts of similar length together, in jobs of whole batches holding at
        least `JOB_TEXTS` texts: a round trip to the worker costs about a millisecond, as
        much as a fast engine's clip, so one-text jobs would leave the worker idle."""
        jobs = []
        for voice, report in enumerate(self.reports):
            mine = sorted(
                (r for r in requests if r.voice == voice), key=lambda r: (-len(r.text), r.index)
            )
            batch = max(1, report.batch_size)
            size = batch * -(-JOB_TEXTS // batch)
            jobs += [(voice, mine[i : i + size]) for i in range(0, len(mine), size)]
        return jobs

    def _job_timeout_s(self, job: tuple[int, list[Request]]) -> float:
        """`timeout_s` for each engine call (batch) the job holds."""
        voice, requests = job
        batch = max(1, self.reports[voice].batch_size) if self.reports else 1
        return self.timeout_s * -(-len(requests) // batch)

    def _dispatch(self, state: _Run) -> None:
        for slot, worker in enumerate(self._workers):
            if worker is None and state.queue:
                self._workers[slot] = self._spawn()
            elif worker is not None and worker.ready and worker.job is None and state.queue:
                worker.job = state.queue.popleft()
                worker.deadline = time.monotonic() + self._job_timeout_s(worker.job)
                worker.conn.send(worker.job)

    @staticmethod
    def _recv(worker: _Worker) -> tuple[Any, ...]:
        try:
            message: tuple[Any, ...] = worker.conn.recv()
        except (EOFError, OSError):
            worker.process.join(5)
            return ("died", f"worker exited with code {worker.process.exitcode}")
        return message

    def _receive(self, worker: _Worker, state: _Run) -> None:
        message = self._recv(worker)
        if message[0] == "died":
            self._lost(worker, state, "worker_died", message[1])
        elif message[0] != "done":
            self._started(worker, message)
        else:
            _, outcomes, worker.rss_bytes = message
            voice = worker.job[0] if worker.job else 0
            worker.job = None
            for outcome in outcomes:
                self._settle(outcome, voice, state)

    def _started(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        """A start-up message: ready with the voice reports, else why the voices did not load."""
        if message[0] == "ready":
            worker.ready = True
            self.reports = self.reports or list(message[1])
            return
        self.close()
        detail = message[1]
        if len(message) > 2 and message[2]:
            raise ConfigError(detail.removeprefix("ConfigError: "))
        raise EngineStartError(f"tts: a worker could not load its voices: {detail}")

    def _settle(self, outcome: Outcome, voice: int, state: _Run) -> None:
        """Keep a final outcome, or queue the text again alone if it may be retried."""
        if isinstance(outcome, Failed) and outcome.retryable:
            tries = state.attempts[outcome.index] + 1
            if tries <= self.retries:
                state.attempts[outcome.index] = tries
                state.queue.append((voice, [state.requests[outcome.index]]))
                return
            outcome = Failed(
                outcome.index, outcome.reason, f"{outcome.detail} (after {tries} attempts)", False
            )
        state.results[outcome.index] = outcome
        state.notify(outcome)

    def _lost(self, worker: _Worker, state: _Run, reason: str, detail: str) -> None:
        """A worker hung or died: drop it; its texts are retried (a batch: each alone)."""
        job = worker.job
        self._drop(worker)
        if job is None:
            self.close()
            raise EngineStartError(f"tts: a worker failed while loading its voices: {detail}")
        voice, requests = job
        if len(requests) > 1:
            state.queue.extendleft((voice, [r]) for r in reversed(requests))
            return
        self._settle(Failed(requests[0].index, reason, detail, True), voice, state)
