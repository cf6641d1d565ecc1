"""One active-selection round as a Prefect flow: the list of its stages, in order.

Each step is a stage declared in `saladpipe/pipeline/` and run by the executor
(`executor.py`: one task per shard, resume, concurrency tags, retries, quarantine);
the flow only says which stage runs on which files. Heavy objects travel as specs
(`EmbedderSpec`, `SpeechSpec`, `ScorerSpec`) and are built once per worker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from prefect import flow

from saladpipe.data_schemas.config import RunConfig
from saladpipe.data_schemas.io import write_text_if_changed
from saladpipe.data_schemas.layout import RunLayout, cache_dir
from saladpipe.data_schemas.manifest import Manifest
from saladpipe.flows import runners
from saladpipe.flows.executor import KEPT, Executor, PrefectExecutor, run_logger
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


@flow(name="saladpipe-round", validate_parameters=False)
def salad_round(
    config: RunConfig,
    round_index: int = 0,
    trained: BuiltinDirs = (),
    publish: Publisher | None = None,
) -> Manifest:
    """The round's stages, each call a Prefect task (`round_stages`)."""
    from prefect.runtime import flow_run

    layout = RunLayout(config.output_path()).for_round(round_index)
    tags = runners.stage_tags(config, torch.cuda.is_available())
    run = PrefectExecutor(layout, {Resource.SCORING: tags.score, Resource.TTS: tags.tts})
    manifest = round_stages(run, config, trained, str(flow_run.id) if flow_run.id else None)
    if publish is not None:
        publish(layout.root)
    return manifest


def round_stages(
    run: Executor, config: RunConfig, trained: BuiltinDirs, flow_run_id: str | None
) -> Manifest:
    """Round 0: ingest, embed, cluster, probe, score, select, synthesize and write.

    A later round reuses round 0's pool and probe clips, re-scores the probes with the
    configured student and selects a fresh budget among the texts the ledger does not
    hold. `trained` holds the folders of the trained builtin models (built before the
    run by the entry point that starts it).
    """
    log = run_logger()
    layout, round_index = run.layout, run.layout.round_index
    resuming = ledger.same_attempt(layout, config)
    write_text_if_changed(config.model_dump_json(indent=2), layout.config_copy)
    speech = SpeechSpec(config.tts, config.output.audio_format, config.run.seed)
    if round_index == 0:
        pool = _new_pool(run, config, layout, speech)
    else:
        pool = ledger.reused_pool(layout, resuming)
    corpus, embeddings, assignments, probes, clips, probe_quarantine = (
        pool.paths(layout.root, kind)
        for kind in ("corpus", "embeddings", "assignments", "probes", "clips", "probe_quarantine")
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
        {
            "probes_shard": probes,
            "clips_shard": clips,
            "out_path": _each(layout.scores_shard, probes),
        },
        scorer=scorer,
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
        {
            "assignments_shard": assignments,
            "embedding_shard": embeddings,
            "out_path": _each(layout.gap_estimates_shard, assignments),
        },
        scores=scores,
        probe_embeddings=probe_vectors,
        propagate=config.propagate,
    )

    inputs = select.SelectInputs(
        corpus, assignments, embeddings, scores, clips, estimates,
        ledger.ledger_files(layout, before=round_index), probe_quarantine,
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

    starts = list(range(0, outcome.selected, config.output.shard_rows))
    tts_quarantine = _each(lambda i: layout.quarantine("tts", i), starts)
    made = run.map(
        synthesize.SPEAK_SELECTION,
        {
            "start": starts,
            "stop": [min(s + config.output.shard_rows, outcome.selected) for s in starts],
            "out_path": _each(layout.output_shard, starts),
            "quarantine_path": tts_quarantine,
        },
        selection_path=layout.selection(round_index),
        output=config.output,
        speech=speech,
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
        flow_run_id=flow_run_id,
    )
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
    corpus_path = ingest.corpus_location(config.corpus, config.run.seed, cache_dir())
    stats = run.run(
        ingest.INGEST,
        corpus=config.corpus,
        probe=config.probe,
        checks=config.tts.checks,
        corpus_path=corpus_path,
        sources=ingest.input_files(corpus_path, config.corpus.format),
        layout=layout,
    )
    embeddings = run.map(
        embed.EMBED,
        {"corpus_shard": stats.shards, "out_path": _each(layout.embeddings_shard, stats.shards)},
        embedder=EmbedderSpec(config.embed),
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
    rejected = _each(lambda i: layout.quarantine("probe_tts", i), probes)
    clips = run.map(
        synthesize.SPEAK_PROBES,
        {
            "probes_shard": probes,
            "out_path": _each(layout.probe_clips_shard, probes),
            "quarantine_path": rejected,
        },
        speech=speech,
    )
    return ledger.RoundInputs.of(
        layout.root, stats.shards, embeddings, assignments, probes, clips, stats.counts(), rejected
    )


def _assign(
    run: Executor, config: RunConfig, layout: RunLayout, embeddings: list[Path], centroids: Path
) -> list[Path]:
    """Every text to a cluster: its nearest centroid (plain), or a pool-wide matching into
    clusters of at most ceil(N/K) texts from per-shard preferences (balanced, scratch)."""
    out = _each(layout.assignments_shard, embeddings)
    if config.cluster.method == "plain":
        shards = {"embedding_shard": embeddings, "out_path": out}
        return run.map(cluster.ASSIGN, shards, centroids_path=centroids)
    preferences = _each(layout.cluster_preferences, embeddings)
    balance = dict(
        embedding_shards=embeddings,
        preference_shards=preferences,
        centroids_path=centroids,
        out_paths=out,
    )
    if run.finished(cluster.BALANCE, **balance):
        run_logger().info(
            "%s: not needed: %s %s", cluster.PREFERENCES.name, cluster.BALANCE.name, KEPT
        )
    else:
        shards = {"embedding_shard": embeddings, "out_path": preferences}
        run.map(cluster.PREFERENCES, shards, centroids_path=centroids)
    return run.run(cluster.BALANCE, **balance)


def _each(path_of: Callable[[int], Path], shards: Sequence[Any]) -> list[Path]:
    """The path of every shard's output, by its index."""
    return [path_of(i) for i in range(len(shards))]
