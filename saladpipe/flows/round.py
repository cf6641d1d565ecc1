"""One active-selection round as a Prefect flow.

The flow only orchestrates: each task calls one pipeline stage on one shard and
passes paths, never tables. Heavy objects (embedder, TTS voice, teacher and
student) are built once per worker by `saladpipe.flows.resources`.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, cast

import torch
from prefect import Task, flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, wait
from prefect.runtime import task_run
from prefect.tasks import exponential_backoff

from saladpipe.corpora import builtin_corpus_path
from saladpipe.data_schemas.config import RunConfig
from saladpipe.data_schemas.io import remove_stale_temporaries, write_text_if_changed
from saladpipe.data_schemas.layout import RunLayout
from saladpipe.data_schemas.manifest import Manifest
from saladpipe.data_schemas.shard_writer import ShardLimits
from saladpipe.flows import resources, runners
from saladpipe.flows.artifacts import publish_audit_summary
from saladpipe.flows.completion import CompletionStore, paths_in
from saladpipe.flows.lock import RunLock
from saladpipe.flows.server import prefect_api
from saladpipe.models import builtin as builtin_models
from saladpipe.pipeline import (
    cluster,
    embed,
    ledger,
    probe,
    propagate,
    score,
    select,
    synthesize,
)
from saladpipe.pipeline.ingest import IngestStats, corpus_texts, ingest, input_files
from saladpipe.pipeline.write_manifest import scoring_counts, scoring_model_ids, write_manifest

PLACEHOLDER_WARNING = (
    "teacher/student are PLACEHOLDER models (tiny, random weights, built from configs): "
    "their gap scores carry no meaning. Set models.teacher.source and models.student.source "
    "to real checkpoints for a real selection."
)

P = ParamSpec("P")
R = TypeVar("R")


Outputs = Callable[[dict[str, Any]], Iterable[Path]]
GiveUp = Callable[[dict[str, Any], Exception], Any]

# A task that raises is tried again after 2 s, then 4 s (a passing reason: a full disk
# being cleaned, a GPU briefly out of memory); a task with `give_up` then hands its rows
# to quarantine and the run goes on.
TASK_RETRIES = 2
RETRY_BACKOFF_S = 2.0


@dataclass(frozen=True)
class _Stage:
    """How the executor runs one stage's body: its name, its code, what it writes.

    `scratch` names arguments that hold scratch inputs: files an earlier task wrote
    only for this stage, determined by this stage's other inputs. They are keyed by
    path, not content, and deleted once this stage's record is written, so a finished
    stage never depends on them and their producers need not run again
    (`stage_finished`). `unkeyed` names arguments that say which attempt asks (a flow
    run id), not what to compute.
    """

    name: str
    fn: Callable[..., Any]
    outputs: Outputs | None
    resumable: bool
    give_up: GiveUp | None
    scratch: tuple[str, ...]
    unkeyed: tuple[str, ...]

    def arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        return dict(inspect.signature(self.fn).bind(*args, **kwargs).arguments)

    def lookup(self, arguments: dict[str, Any]) -> tuple[CompletionStore, str, Any]:
        """The run folder's records, this call's key and its record (None: not finished)."""
        store = CompletionStore(_run_layout(arguments))
        key = store.key(self.name, self.fn, arguments, self.scratch, self.unkeyed)
        return store, key, store.lookup(self.name, key)

    def run(self, *args: Any, **kwargs: Any) -> Any:
        arguments = self.arguments(args, kwargs)
        if not self.resumable:
            return self.fn(*args, **kwargs)
        store, key, done = self.lookup(arguments)
        if done is not None:
            get_run_logger().info("%s: %s", self.name, KEPT)
            self._remove_scratch(arguments)  # what a kill right after the record left
            return done.result
        try:
            result = self.fn(*args, **kwargs)
        except Exception as exc:
            if self.give_up is None or task_run.get_run_count() <= TASK_RETRIES:
                raise
            get_run_logger().error(
                "%s: failed %d times, giving up: %r", self.name, TASK_RETRIES + 1, exc
            )
            return self.give_up(arguments, exc)
        made = [*paths_in(result), *(self.outputs(arguments) if self.outputs else ())]
        store.record(self.name, key, result, made)
        self._remove_scratch(arguments)
        return result

    def _remove_scratch(self, arguments: dict[str, Any]) -> None:
        for name in self.scratch:
            for path in paths_in(arguments[name]):
                path.unlink(missing_ok=True)


# What the log says of a task whose record and files are intact.
KEPT = "finished earlier on the same inputs; kept"
_STAGES: dict[str, _Stage] = {}


def stage_task(
    name: str,
    outputs: Outputs | None = None,
    resumable: bool = True,
    give_up: GiveUp | None = None,
    scratch: tuple[str, ...] = (),
    unkeyed: tuple[str, ...] = (),
) -> Callable[[Callable[P, R]], Task[P, R]]:
    """A task that runs one stage; results live in the files it writes, not in Prefect.

    A resumable task is skipped when the run folder holds the completion record of the
    same task on the same inputs and the files it keeps are unchanged (`completion.py`);
    the files it keeps are those in its return value plus `outputs(arguments)`; the
    files named by its `scratch` arguments are deleted once it has finished (`_Stage`).
    Every task takes the run's `config` (or a `layout`), which says where the records
    live. A task with `give_up` is retried with backoff; when its last attempt fails
    too, `give_up(arguments, error)` quarantines its rows and its value is the task's
    result (not recorded as finished: a resumed run tries it again).
    """

    def wrap(fn: Callable[P, R]) -> Task[P, R]:
        stage = _Stage(name, fn, outputs, resumable, give_up, scratch, unkeyed)
        _STAGES[name] = stage

        @functools.wraps(fn)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            return cast(R, stage.run(*args, **kwargs))

        retries = TASK_RETRIES if give_up is not None else 0
        return task(
            name=name,
            cache_policy=NO_CACHE,
            persist_result=False,
            retries=retries,
            retry_delay_seconds=exponential_backoff(RETRY_BACKOFF_S)(retries) if retries else 0,
        )(run)

    return wrap


def stage_finished(stage_task: Task[P, R], *args: P.args, **kwargs: P.kwargs) -> bool:
    """Whether this call of a stage has an intact completion record; runs nothing."""
    stage = _STAGES[stage_task.name]
    return stage.lookup(stage.arguments(args, kwargs))[2] is not None


def _run_layout(arguments: dict[str, Any]) -> RunLayout:
    layout = arguments.get("layout")
    if isinstance(layout, RunLayout):
        return layout
    config = arguments.get("config")
    if isinstance(config, RunConfig):
        return RunLayout(config.output_path())
    raise TypeError("a resumable stage task takes the run's config or layout")


@dataclass(frozen=True)
class RoundResult:
    """What a finished round returns to its caller."""

    run_dir: Path
    manifest: Manifest


def _corpus_path(config: RunConfig) -> Path:
    """The corpus file or folder; a builtin corpus is built into the cache on first use."""
    corpus = config.corpus
    if corpus.builtin is not None:
        return builtin_corpus_path(
            corpus.builtin, corpus.builtin_texts_per_domain, config.run.seed, resources.cache_dir()
        )
    assert corpus.path is not None  # the config validator guarantees one source
    return corpus.path


@stage_task("ingest")
def ingest_task(
    config: RunConfig, layout: RunLayout, corpus_path: Path, sources: list[Path]
) -> IngestStats:
    """Validate the corpus into shards; `sources` (the files it reads) key it by content."""
    return ingest(
        config.corpus, corpus_path, layout, probe.split_columns(config.probe), config.tts.checks
    )


@stage_task("embed-shard")
def embed_task(config: RunConfig, corpus_shard: Path, out_path: Path) -> Path:
    model = resources.embedder(config.embed.model, config.embed.device, config.embed.batch_size)
    embed.embed_shard(corpus_shard, out_path, model)
    return out_path


@stage_task("fit-centroids")
def fit_task(config: RunConfig, embedding_shards: list[Path], out_path: Path) -> Path:
    cluster.fit_centroids(
        embedding_shards,
        config.cluster.k,
        config.cluster.iterations,
        config.run.seed,
        out_path,
        config.cluster.method,
    )
    return out_path


@stage_task("assign-shard")
def assign_task(
    config: RunConfig, embedding_shard: Path, centroids_path: Path, out_path: Path
) -> Path:
    import numpy as np

    cluster.assign_shard(embedding_shard, np.load(centroids_path), out_path)
    return out_path


@stage_task("cluster-preferences-shard")
def preferences_task(
    config: RunConfig, embedding_shard: Path, centroids_path: Path, out_path: Path
) -> Path:
    import numpy as np

    return cluster.preferences_shard(embedding_shard, np.load(centroids_path), out_path)


@stage_task("assign-balanced", scratch=("preferences",))
def balance_task(
    config: RunConfig,
    embeddings: list[Path],
    preferences: list[Path],
    centroids_path: Path,
    out_paths: list[Path],
) -> list[Path]:
    import numpy as np

    return cluster.assign_balanced(embeddings, preferences, np.load(centroids_path), out_paths)


@stage_task("draw-probes")
def probes_task(
    config: RunConfig, assignments: list[Path], corpus_shards: list[Path], layout: RunLayout
) -> list[Path]:
    splits = probe.split_shards(config.probe, corpus_shards, layout)
    pool = probe.load_pool(assignments, corpus_shards, splits)
    return probe.draw_probes(pool, config.probe, config.run.seed, layout)


@stage_task("build-builtin-models")
def builtin_models_task(
    config: RunConfig, corpus_shards: list[Path]
) -> tuple[tuple[str, Path], ...]:
    """Folders of the builtin models the config names; the trained ones take minutes once."""
    dirs = builtin_models.ensure_builtin_models(
        config.models, lambda: corpus_texts(corpus_shards), config.run.seed, resources.cache_dir()
    )
    return tuple(sorted(dirs.items()))


@stage_task("synthesize-probes", outputs=lambda a: [a["quarantine_path"]])
def probe_tts_task(
    config: RunConfig, probes_shard: Path, out_path: Path, quarantine_path: Path
) -> Path:
    speech = resources.speech_service(config.tts, config.output.audio_format, config.run.seed)
    synthesize.synthesize_probe_shard(probes_shard, out_path, quarantine_path, speech)
    return out_path


@stage_task("score-probes")
def score_task(
    config: RunConfig,
    probes_shard: Path,
    clips_shard: Path,
    out_path: Path,
    placeholder_dirs: tuple[tuple[str, Path], ...],
    model_ids: tuple[str, str],
    settings: dict[str, Any],
) -> Path:
    """Score one probe shard; `model_ids` (the weights' content) and `settings` (resolved
    on this machine) key it, so a new checkpoint at the same path is scored anew."""
    scorer = resources.scorer(config.models, placeholder_dirs)
    score.score_shard(probes_shard, clips_shard, out_path, scorer)
    return out_path


@stage_task("gather-probe-embeddings")
def probe_embeddings_task(
    config: RunConfig, probe_shards: list[Path], embeddings: list[Path], out_path: Path
) -> Path:
    propagate.write_probe_embeddings(probe_shards, embeddings, out_path)
    return out_path


@stage_task("check-gap-propagation")
def propagation_check_task(config: RunConfig, scores: list[Path], probe_embeddings: Path) -> str:
    """How well k-NN propagation predicts held-out scored probes, as a manifest note."""
    probes = propagate.load_scored_probes(scores, probe_embeddings)
    k = config.propagate.neighbors
    if len(probes.values) < 3:
        return f"gap propagation: only {len(probes.values)} scored probes, no held-out check"
    rho = propagate.held_out_rank_correlation(probes, k)
    return (
        f"gap propagation: Spearman rank correlation {rho:.3f} between measured and "
        f"leave-one-out estimated misalignment of {len(probes.values)} scored probes (k = {k})"
    )


@stage_task("estimate-gaps-shard")
def gaps_task(
    config: RunConfig,
    assignments_shard: Path,
    embedding_shard: Path,
    scores: list[Path],
    probe_embeddings: Path,
    out_path: Path,
) -> Path:
    probes = propagate.load_scored_probes(scores, probe_embeddings)
    propagate.estimate_shard(
        assignments_shard, embedding_shard, probes, config.propagate.neighbors, out_path
    )
    return out_path


@stage_task("select", outputs=lambda a: select.selection_outputs(a["layout"]))
def select_task(
    config: RunConfig,
    inputs: select.SelectInputs,
    layout: RunLayout,
    placeholder_dirs: tuple[tuple[str, Path], ...],
) -> select.SelectOutcome:
    tokens = None
    if config.select.budget_unit == "tokens":
        teacher = resources.scorer(config.models, placeholder_dirs).teacher
        tokens = select.token_counter(teacher.tokenizer)
    outcome = select.select_round(inputs, config, layout, tokens)
    get_run_logger().info(
        "round %d: %d texts selected (%.6g of %g %s); cluster sizes %d to %d",
        layout.round_index,
        outcome.selected,
        outcome.spent,
        outcome.limit,
        outcome.unit,
        outcome.counts["cluster_size_min"],
        outcome.counts["cluster_size_max"],
    )
    return outcome


@stage_task("record-round", outputs=lambda a: ledger.round_outputs(a["layout"]))
def record_task(
    config: RunConfig,
    layout: RunLayout,
    inputs: ledger.RoundInputs,
    outcome: select.SelectOutcome,
    shards: list[Path],
    tts_quarantine: list[Path],
    scores: list[Path],
) -> ledger.RoundRecord:
    """Add the round to the ledger: what it picked, what became of each text, and why."""
    selection = select.read_selection(layout.selection(layout.round_index))
    failed = ledger.failed_texts(tts_quarantine)
    rows = ledger.ledger_rows(layout, selection, shards, failed)
    models = scoring_model_ids(scores)
    record = ledger.RoundRecord(
        round=layout.round_index,
        config_hash=config.config_hash(),
        config=config.model_dump(mode="json"),
        strategy=config.select.strategy,
        budget_unit=outcome.unit,
        budget_limit=outcome.limit,
        budget_spent=outcome.spent,
        teacher_id=models.get("teacher"),
        student_id=models.get("student"),
        selected=outcome.selected,
        synthesized=len(selection) - len(failed),
        tts_failed=len(failed),
        shards=[str(p.relative_to(layout.root)) for p in shards],
        inputs=inputs,
        gap_source=outcome.gap_source,
        speech_rate=asdict(outcome.speech_rate),
        notes=outcome.notes,
    )
    return ledger.record_round(layout, record, rows)


def _shard_given_up(arguments: dict[str, Any], error: Exception) -> tuple[list[Path], int]:
    selection = select.read_selection(arguments["selection_path"])
    start, stop = arguments["start"], arguments["stop"]
    synthesize.quarantine_failed_slice(
        selection.slice(start, stop - start),
        arguments["out_path"],
        arguments["quarantine_path"],
        f"synthesize-shard failed {TASK_RETRIES + 1} times: {type(error).__name__}: {error}",
    )
    return [], 0


@stage_task("synthesize-shard", outputs=lambda a: [a["quarantine_path"]], give_up=_shard_given_up)
def shard_task(
    config: RunConfig,
    selection_path: Path,
    start: int,
    stop: int,
    out_path: Path,
    quarantine_path: Path,
) -> tuple[list[Path], int]:
    speech = resources.speech_service(config.tts, config.output.audio_format, config.run.seed)
    selection = select.read_selection(selection_path).slice(start, stop - start)
    limits = ShardLimits.from_mb(config.output.max_shard_mb, config.output.row_group_mb)
    result = synthesize.synthesize_output_shard(
        selection, out_path, quarantine_path, speech, limits
    )
    get_run_logger().info(
        "%s: %d clips, %.1f s of audio, %d quarantined",
        out_path.name,
        len(result.clips),
        result.audio_seconds,
        len(result.rejected),
    )
    return list(result.paths), len(result.clips)


@stage_task("write-manifest", outputs=lambda a: [a["layout"].manifest], unkeyed=("flow_run_id",))
def manifest_task(
    config: RunConfig,
    layout: RunLayout,
    shards: list[Path],
    probe_shards: list[Path],
    scores: list[Path],
    counts: dict[str, int],
    notes: list[str],
    flow_run_id: str | None,
) -> Manifest:
    counts = {**counts, **scoring_counts(probe_shards, scores)}
    models = {
        **scoring_model_ids(scores),
        "embedder": config.embed.model,
        "tts": ", ".join(f"{v.engine}:{v.voice or 'default'}" for v in config.tts.voice_specs()),
    }
    return write_manifest(config, layout, shards, models, counts, notes, flow_run_id)


@stage_task("publish-audit-summary", resumable=False)
def audit_summary_task(config: RunConfig, layout: RunLayout) -> None:
    """The run's summary and cluster table as artifacts on this flow run (Prefect UI)."""
    publish_audit_summary(layout.root)


def _resolved(futures: list[PrefectFuture[R]]) -> list[R]:
    """The results of one stage's shards, in order, once every shard has finished: a failed
    shard raises only after the others have written theirs, so a resumed run finds them."""
    wait(futures)
    return [future.result() for future in futures]


@flow(name="saladpipe-round", validate_parameters=False)
def salad_round(config: RunConfig, round_index: int = 0) -> Manifest:
    """Round 0: ingest, embed, cluster, probe, score, select, synthesize and write.

    A later round reuses round 0's corpus, embeddings, clusters and probe clips,
    re-scores the probes with the configured student, and selects a fresh budget
    among the texts the ledger does not hold.
    """
    from prefect.runtime import flow_run

    log = get_run_logger()
    layout = RunLayout(config.output_path()).for_round(round_index)
    resuming = ledger.same_attempt(layout, config)
    write_text_if_changed(config.model_dump_json(indent=2), layout.config_copy)
    placeholders = builtin_models.uses_placeholders(config.models)
    if placeholders:
        log.warning(PLACEHOLDER_WARNING)
    # Per-shard stages are submitted together and resolved before the next stage, so the
    # task runner runs a stage's shards at once; GPU and CPU-engine work carry the tags
    # that the server's concurrency limits count (runners.py).
    tags = runners.stage_tags(config, torch.cuda.is_available())

    if round_index == 0:
        corpus_path = _corpus_path(config)
        stats = ingest_task(
            config, layout, corpus_path, input_files(corpus_path, config.corpus.format)
        )
        log.info(
            "ingest: %d rows read, %d kept (%d of them cleaned: %s), quarantined %s",
            stats.read,
            stats.kept,
            stats.texts_cleaned,
            stats.cleaned or "nothing removed",
            stats.quarantined or "none",
        )
        corpus_shards = stats.shards
        embeddings = _resolved(
            [
                embed_task.submit(config, s, layout.embeddings_shard(i))
                for i, s in enumerate(corpus_shards)
            ]
        )
        centroids = fit_task(config, embeddings, layout.centroids)
        assignment_paths = [layout.assignments_shard(i) for i in range(len(embeddings))]
        if config.cluster.method == "balanced":
            preferences = [layout.cluster_preferences(i) for i in range(len(embeddings))]
            balance = (config, embeddings, preferences, centroids, assignment_paths)
            if stage_finished(balance_task, *balance):
                log.info("cluster-preferences-shard: not needed: assign-balanced %s", KEPT)
            else:
                _resolved(
                    [
                        preferences_task.submit(config, e, centroids, p)
                        for e, p in zip(embeddings, preferences, strict=True)
                    ]
                )
            assignments = balance_task(*balance)
        else:
            assignments = _resolved(
                [
                    assign_task.submit(config, e, centroids, p)
                    for e, p in zip(embeddings, assignment_paths, strict=True)
                ]
            )
        probe_shards = probes_task(config, assignments, corpus_shards, layout)
        probe_tts = probe_tts_task.with_options(tags=tags.tts)
        clips = _resolved(
            [
                probe_tts.submit(
                    config, p, layout.probe_clips_shard(i), layout.quarantine("probe_tts", i)
                )
                for i, p in enumerate(probe_shards)
            ]
        )
        pool_files = ledger.RoundInputs.of(
            layout.root,
            corpus_shards,
            embeddings,
            assignments,
            probe_shards,
            clips,
            {
                "corpus_rows_read": stats.read,
                "corpus_texts": stats.kept,
                "quarantined_ingest": sum(stats.quarantined.values()),
                "texts_cleaned": stats.texts_cleaned,
                **{f"cleaned_{kind}": n for kind, n in sorted(stats.cleaned.items())},
            },
        )
    else:
        # The same config resumes from the completion records; another one starts over.
        stale = [] if resuming else ledger.clear_unfinished_round(layout)
        if stale:
            log.info("round %d: removed %d files of an unfinished attempt", round_index, len(stale))
        pool_files = ledger.finished_rounds(layout)[0].inputs
        corpus_shards = pool_files.paths(layout.root, "corpus")
        embeddings = pool_files.paths(layout.root, "embeddings")
        assignments = pool_files.paths(layout.root, "assignments")
        probe_shards = pool_files.paths(layout.root, "probes")
        clips = pool_files.paths(layout.root, "clips")
        log.info("round %d: reusing the pool and probes of round 0", round_index)
    placeholder_dirs = (
        builtin_models_task(config, corpus_shards)
        if builtin_models.builtin_names(config.models)
        else ()
    )
    trained_note = builtin_models.trained_note(dict(placeholder_dirs))
    if trained_note:
        log.info(trained_note)
    model_ids = resources.model_ids(config.models, placeholder_dirs)
    settings = score.scoring_settings(config.models)
    scores = _resolved(
        [
            score_task.with_options(tags=tags.score).submit(
                config, p, c, layout.scores_shard(i), placeholder_dirs, model_ids, settings
            )
            for i, (p, c) in enumerate(zip(probe_shards, clips, strict=True))
        ]
    )
    probe_vectors = probe_embeddings_task(config, probe_shards, embeddings, layout.probe_embeddings)
    propagation_note = propagation_check_task(config, scores, probe_vectors)
    _resolved(
        [
            gaps_task.submit(config, a, e, scores, probe_vectors, layout.gap_estimates_shard(i))
            for i, (a, e) in enumerate(zip(assignments, embeddings, strict=True))
        ]
    )
    log.info(propagation_note)
    inputs = select.SelectInputs(corpus_shards, assignments, embeddings, scores, clips)
    outcome = select_task(config, inputs, layout, placeholder_dirs)
    selected = outcome.selected
    notes = [*outcome.notes, propagation_note]
    shard_rows = config.output.shard_rows
    tts_quarantine = [
        layout.quarantine("tts", i) for i in range(len(range(0, selected, shard_rows)))
    ]
    outputs = _resolved(
        [
            shard_task.with_options(tags=tags.tts).submit(
                config,
                layout.selection(round_index),
                start,
                min(start + shard_rows, selected),
                layout.output_shard(i),
                tts_quarantine[i],
            )
            for i, start in enumerate(range(0, selected, shard_rows))
        ]
    )
    shards = [path for paths, _ in outputs for path in paths]
    record_task(config, layout, pool_files, outcome, shards, tts_quarantine, scores)
    counts = {
        **pool_files.counts,
        "clusters": config.cluster.k,
        "round": round_index,
        **outcome.counts,
        "synthesized": sum(n for _, n in outputs),
        "shards": len(shards),
    }
    if placeholders:
        notes = [PLACEHOLDER_WARNING, *notes]
    if trained_note:
        notes = [trained_note, *notes]
    # The manifest describes the whole folder: the shards of every round so far.
    all_shards = [
        layout.root / s for record in ledger.finished_rounds(layout) for s in record.shards
    ]
    manifest = manifest_task(
        config,
        layout,
        all_shards,
        probe_shards,
        scores,
        counts,
        notes,
        str(flow_run.id) if flow_run.id else None,
    )
    audit_summary_task(config, layout)
    log.info(
        "run %s: %d of %d selected texts synthesized into %d shards; manifest %s",
        config.run.name,
        counts["synthesized"],
        selected,
        len(shards),
        layout.manifest,
    )
    return manifest


def run_round(config: RunConfig, round_index: int = 0) -> RoundResult:
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
            manifest: Any = round_flow(config, round_index)
    finally:
        resources.close_speech_services()
    return RoundResult(layout.root, manifest)
