"""One active-selection round as a Prefect flow: the list of its stages, in order.

Each step is a stage declared in `saladpipe/pipeline/` and run by the executor
(`executor.py`: one task per shard, resume, concurrency tags, retries, quarantine);
the flow only says which stage runs on which files. Heavy objects travel as specs
(`EmbedderSpec`, `SpeechSpec`, `ScorerSpec`) and are built once per worker.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from prefect import flow, get_run_logger

from saladpipe.corpora import builtin_corpus_path
from saladpipe.data_schemas.config import RunConfig
from saladpipe.data_schemas.io import remove_stale_temporaries, write_text_if_changed
from saladpipe.data_schemas.layout import RunLayout, cache_dir
from saladpipe.data_schemas.manifest import Manifest
from saladpipe.flows import resources, runners
from saladpipe.flows.executor import KEPT, Executor
from saladpipe.flows.lock import RunLock
from saladpipe.flows.server import prefect_api
from saladpipe.models import builtin
from saladpipe.models.embedding import EmbedderSpec
from saladpipe.models.loading import BuiltinDirs, ScorerSpec, TokenizerSpec
from saladpipe.pipeline import (
    cluster,
    embed,
    ingest,
    ledger,
    probe,
    propagate,
    record,
    score,
    select,
    synthesize,
    write_manifest,
)
from saladpipe.pipeline.stage import Resource
from saladpipe.tts.service import SpeechSpec

#: Called in the flow once the manifest is written, with the run folder (e.g. to publish
#: the audit summary as Prefect artifacts of the flow run).
Publisher = Callable[[Path], object]


@dataclass(frozen=True)
class RoundResult:
    """What a finished round returns to its caller."""

    run_dir: Path
    manifest: Manifest


@flow(name="saladpipe-round", validate_parameters=False)
def salad_round(
    config: RunConfig,
    round_index: int = 0,
    trained: BuiltinDirs = (),
    publish: Publisher | None = None,
) -> Manifest:
    """Round 0: ingest, embed, cluster, probe, score, select, synthesize and write.

    A later round reuses round 0's pool and probe clips, re-scores the probes with the
    configured student and selects a fresh budget among the texts the ledger does not
    hold. `trained` holds the folders of the trained builtin models (built before the
    run by the entry point that starts it).
    """
    from prefect.runtime import flow_run

    log = get_run_logger()
    layout = RunLayout(config.output_path()).for_round(round_index)
    resuming = ledger.same_attempt(layout, config)
    write_text_if_changed(config.model_dump_json(indent=2), layout.config_copy)
    tags = runners.stage_tags(config, torch.cuda.is_available())
    run = Executor(layout, {Resource.SCORING: tags.score, Resource.TTS: tags.tts})
    speech = SpeechSpec(config.tts, config.output.audio_format, config.run.seed)
    if round_index == 0:
        pool = _new_pool(run, config, layout, speech)
    else:
        pool = _reused_pool(layout, resuming)
    corpus, embeddings, assignments, probes, clips = (
        pool.paths(layout.root, kind)
        for kind in ("corpus", "embeddings", "assignments", "probes", "clips")
    )

    dirs = run.run(
        score.BUILTIN_MODELS,
        models=config.models,
        corpus_shards=corpus,
        seed=config.run.seed,
        cache_root=cache_dir(),
        trained=trained,
    )
    model_notes = builtin.model_notes(config.models, dict(dirs))
    for note in model_notes:
        log.log(logging.WARNING if note == builtin.PLACEHOLDER_WARNING else logging.INFO, note)
    scorer = ScorerSpec.of(config.models, dirs)
    scores = run.map(
        score.SCORE,
        [
            dict(probes_shard=p, clips_shard=c, out_path=layout.scores_shard(i), scorer=scorer)
            for i, (p, c) in enumerate(zip(probes, clips, strict=True))
        ],
    )

    probe_vectors = run.run(
        propagate.GATHER,
        probe_shards=probes,
        embedding_shards=embeddings,
        out_path=layout.probe_embeddings,
    )
    propagation = run.run(
        propagate.CHECK, scores=scores, probe_embeddings=probe_vectors, propagate=config.propagate
    )
    log.info(propagation)
    estimates = run.map(
        propagate.ESTIMATE,
        [
            dict(
                assignments_shard=a,
                embedding_shard=e,
                scores=scores,
                probe_embeddings=probe_vectors,
                propagate=config.propagate,
                out_path=layout.gap_estimates_shard(i),
            )
            for i, (a, e) in enumerate(zip(assignments, embeddings, strict=True))
        ],
    )

    inputs = select.SelectInputs(
        corpus, assignments, embeddings, scores, clips, estimates,
        ledger.ledger_files(layout, before=round_index),
    )  # fmt: skip
    counts_tokens = config.select.budget_unit == "tokens"
    outcome = run.run(
        select.SELECT,
        inputs=inputs,
        select=config.select,
        cluster=config.cluster,
        seed=config.run.seed,
        layout=layout,
        tokenizer=TokenizerSpec(config.models.teacher, dirs) if counts_tokens else None,
    )
    log.info(
        "round %d: %d texts selected (%.6g of %g %s); cluster sizes %d to %d",
        round_index,
        outcome.selected,
        outcome.spent,
        outcome.limit,
        outcome.unit,
        outcome.counts["cluster_size_min"],
        outcome.counts["cluster_size_max"],
    )

    starts = range(0, outcome.selected, config.output.shard_rows)
    tts_quarantine = [layout.quarantine("tts", i) for i in range(len(starts))]
    made = run.map(
        synthesize.SPEAK_SELECTION,
        [
            dict(
                selection_path=layout.selection(round_index),
                start=start,
                stop=min(start + config.output.shard_rows, outcome.selected),
                output=config.output,
                out_path=layout.output_shard(i),
                quarantine_path=tts_quarantine[i],
                speech=speech,
            )
            for i, start in enumerate(starts)
        ],
    )
    shards = [path for paths, _ in made for path in paths]

    run.run(
        record.RECORD,
        config=config,
        layout=layout,
        pool=pool,
        outcome=outcome,
        selection_path=layout.selection(round_index),
        shards=shards,
        tts_quarantine=tts_quarantine,
        scores=scores,
        texts_path=layout.ledger_texts(round_index),
        record_path=layout.ledger_round(round_index),
    )
    manifest = run.run(
        write_manifest.MANIFEST,
        config=config,
        layout=layout,
        all_shards=[layout.root / s for r in ledger.finished_rounds(layout) for s in r.shards],
        round_shards=shards,
        synthesized=sum(n for _, n in made),
        probe_shards=probes,
        scores=scores,
        pool=pool,
        outcome=outcome,
        notes=[*model_notes, *outcome.notes, propagation],
        out_path=layout.manifest,
        flow_run_id=str(flow_run.id) if flow_run.id else None,
    )
    if publish is not None:
        publish(layout.root)
    counts = manifest.counts
    log.info(
        "run %s: %d of %d selected texts synthesized into %d shards; manifest %s",
        config.run.name,
        counts["synthesized"],
        counts["selected"],
        counts["shards"],
        layout.manifest,
    )
    return manifest


def _new_pool(
    run: Executor, config: RunConfig, layout: RunLayout, speech: SpeechSpec
) -> ledger.RoundInputs:
    """Round 0's pool: the corpus ingested, embedded and clustered, its probes drawn and
    their prefixes spoken."""
    log = get_run_logger()
    corpus_path = _corpus_path(config)
    stats = run.run(
        ingest.INGEST,
        corpus=config.corpus,
        probe=config.probe,
        checks=config.tts.checks,
        corpus_path=corpus_path,
        sources=ingest.input_files(corpus_path, config.corpus.format),
        layout=layout,
    )
    log.info(
        "ingest: %d rows read, %d kept (%d of them cleaned: %s), quarantined %s",
        stats.read,
        stats.kept,
        stats.texts_cleaned,
        stats.cleaned or "nothing removed",
        stats.quarantined or "none",
    )
    embedder = EmbedderSpec(config.embed)
    embeddings = run.map(
        embed.EMBED,
        [
            dict(corpus_shard=s, out_path=layout.embeddings_shard(i), embedder=embedder)
            for i, s in enumerate(stats.shards)
        ],
    )
    centroids = run.run(
        cluster.FIT,
        embedding_shards=embeddings,
        cluster=config.cluster,
        seed=config.run.seed,
        out_path=layout.centroids,
    )
    assignments = _assign(run, config, layout, embeddings, centroids)
    probes = run.run(
        probe.DRAW,
        assignments=assignments,
        corpus_shards=stats.shards,
        splits=stats.splits,
        probe=config.probe,
        seed=config.run.seed,
        layout=layout,
    )
    clips = run.map(
        synthesize.SPEAK_PROBES,
        [
            dict(
                probes_shard=p,
                out_path=layout.probe_clips_shard(i),
                quarantine_path=layout.quarantine("probe_tts", i),
                speech=speech,
            )
            for i, p in enumerate(probes)
        ],
    )
    return ledger.RoundInputs.of(
        layout.root, stats.shards, embeddings, assignments, probes, clips, stats.counts()
    )


def _assign(
    run: Executor, config: RunConfig, layout: RunLayout, embeddings: list[Path], centroids: Path
) -> list[Path]:
    """Every text to a cluster: its nearest centroid (plain), or a pool-wide matching into
    clusters of at most ceil(N/K) texts from per-shard preferences (balanced, scratch)."""
    out = [layout.assignments_shard(i) for i in range(len(embeddings))]
    if config.cluster.method == "plain":
        return run.map(
            cluster.ASSIGN,
            [
                dict(embedding_shard=e, centroids_path=centroids, out_path=o)
                for e, o in zip(embeddings, out, strict=True)
            ],
        )
    preferences = [layout.cluster_preferences(i) for i in range(len(embeddings))]
    balance = dict(
        embedding_shards=embeddings,
        preference_shards=preferences,
        centroids_path=centroids,
        out_paths=out,
    )
    if run.finished(cluster.BALANCE, **balance):
        log = get_run_logger()
        log.info("%s: not needed: %s %s", cluster.PREFERENCES.name, cluster.BALANCE.name, KEPT)
    else:
        run.map(
            cluster.PREFERENCES,
            [
                dict(embedding_shard=e, centroids_path=centroids, out_path=p)
                for e, p in zip(embeddings, preferences, strict=True)
            ],
        )
    return run.run(cluster.BALANCE, **balance)


def _reused_pool(layout: RunLayout, resuming: bool) -> ledger.RoundInputs:
    """A later round's pool: round 0's, as the ledger recorded it. An attempt at this round
    with another config is cleared first; the same config resumes from its records."""
    log = get_run_logger()
    stale = [] if resuming else ledger.clear_unfinished_round(layout)
    if stale:
        log.info(
            "round %d: removed %d files of an unfinished attempt", layout.round_index, len(stale)
        )
    log.info("round %d: reusing the pool and probes of round 0", layout.round_index)
    return ledger.finished_rounds(layout)[0].inputs


def _corpus_path(config: RunConfig) -> Path:
    """The corpus file or folder; a builtin corpus is built into the cache on first use."""
    corpus = config.corpus
    if corpus.builtin is not None:
        return builtin_corpus_path(
            corpus.builtin, corpus.builtin_texts_per_domain, config.run.seed, cache_dir()
        )
    assert corpus.path is not None  # the config validator guarantees one source
    return corpus.path


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
