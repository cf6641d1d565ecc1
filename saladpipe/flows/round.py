"""One active-selection round as a Prefect flow.

The flow only orchestrates: each task calls one pipeline stage on one shard and
passes paths, never tables. Heavy objects (embedder, TTS voice, teacher and
student) are built once per worker by `saladpipe.pipeline.resources`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from prefect import Task, flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from saladpipe.data_schemas.config import RunConfig, is_builtin
from saladpipe.data_schemas.io import write_text
from saladpipe.data_schemas.layout import RunLayout
from saladpipe.data_schemas.manifest import Manifest
from saladpipe.flows.server import prefect_api
from saladpipe.pipeline import cluster, embed, probe, resources, score, select, synthesize
from saladpipe.pipeline.corpora import builtin_corpus_path
from saladpipe.pipeline.ingest import IngestStats, corpus_texts, ingest
from saladpipe.pipeline.manifest import scoring_counts, scoring_model_ids, write_manifest

PLACEHOLDER_WARNING = (
    "teacher/student are PLACEHOLDER models (tiny, random weights, built from configs): "
    "their gap scores carry no meaning. Set models.teacher.source and models.student.source "
    "to real checkpoints for a real selection."
)

P = ParamSpec("P")
R = TypeVar("R")


def stage_task(name: str) -> Callable[[Callable[P, R]], Task[P, R]]:
    """A task that runs one stage; results live in the files it writes, not in Prefect."""
    return task(name=name, cache_policy=NO_CACHE, persist_result=False)


@dataclass(frozen=True)
class RoundResult:
    """What a finished round returns to its caller."""

    run_dir: Path
    manifest: Manifest


@stage_task("ingest")
def ingest_task(config: RunConfig, layout: RunLayout) -> IngestStats:
    corpus = config.corpus
    if corpus.builtin is not None:
        path = builtin_corpus_path(
            corpus.builtin, corpus.builtin_texts_per_domain, config.run.seed, resources.cache_dir()
        )
    else:
        assert corpus.path is not None  # the config validator guarantees one source
        path = corpus.path
    return ingest(corpus, path, layout)


@stage_task("embed-shard")
def embed_task(config: RunConfig, corpus_shard: Path, out_path: Path) -> Path:
    model = resources.embedder(config.embed.model, config.embed.device, config.embed.batch_size)
    embed.embed_shard(corpus_shard, out_path, model)
    return out_path


@stage_task("fit-centroids")
def fit_task(config: RunConfig, embedding_shards: list[Path], out_path: Path) -> Path:
    cluster.fit_centroids(
        embedding_shards, config.cluster.k, config.cluster.iterations, config.run.seed, out_path
    )
    return out_path


@stage_task("assign-shard")
def assign_task(embedding_shard: Path, centroids_path: Path, out_path: Path) -> Path:
    import numpy as np

    cluster.assign_shard(embedding_shard, np.load(centroids_path), out_path)
    return out_path


@stage_task("draw-probes")
def probes_task(
    config: RunConfig, assignments: list[Path], corpus_shards: list[Path], layout: RunLayout
) -> list[Path]:
    pool = probe.load_pool(assignments, corpus_shards)
    return probe.draw_probes(pool, config.probe, config.run.seed, layout)


@stage_task("build-placeholder-models")
def placeholder_task(config: RunConfig, corpus_shards: list[Path]) -> tuple[tuple[str, Path], ...]:
    from saladpipe.pipeline.models.placeholder import ensure_placeholder_models

    texts = corpus_texts(corpus_shards)
    dirs = ensure_placeholder_models(resources.cache_dir() / "models", texts, config.run.seed)
    return tuple(sorted(dirs.items()))


@stage_task("synthesize-probes")
def probe_tts_task(
    config: RunConfig, probes_shard: Path, out_path: Path, quarantine_path: Path
) -> Path:
    engine = resources.tts_engine(config.tts.engine, config.tts.voice)
    synthesize.synthesize_probe_shard(
        probes_shard, out_path, quarantine_path, engine, config.tts, config.output
    )
    return out_path


@stage_task("score-probes")
def score_task(
    config: RunConfig,
    probes_shard: Path,
    clips_shard: Path,
    out_path: Path,
    placeholder_dirs: tuple[tuple[str, Path], ...],
) -> Path:
    scorer = resources.scorer(config.models, placeholder_dirs)
    score.score_shard(probes_shard, clips_shard, out_path, scorer)
    return out_path


@stage_task("select")
def select_task(
    config: RunConfig,
    assignments: list[Path],
    corpus_shards: list[Path],
    scores: list[Path],
    layout: RunLayout,
) -> tuple[int, list[str]]:
    pool = probe.load_pool(assignments, corpus_shards)
    selection, gaps = select.select_round(
        pool,
        scores,
        config.cluster.k,
        config.select,
        config.run.seed,
        0,
        layout.selection(0),
        layout.cluster_stats,
    )
    return selection.num_rows, gaps.notes


@stage_task("synthesize-shard")
def shard_task(
    config: RunConfig,
    selection_path: Path,
    start: int,
    stop: int,
    out_path: Path,
    quarantine_path: Path,
) -> tuple[Path | None, int]:
    engine = resources.tts_engine(config.tts.engine, config.tts.voice)
    selection = select.read_selection(selection_path).slice(start, stop - start)
    result = synthesize.synthesize_output_shard(
        selection, out_path, quarantine_path, engine, config.tts, config.output
    )
    get_run_logger().info(
        "%s: %d clips, %.1f s of audio, %d quarantined",
        out_path.name,
        len(result.clips),
        result.audio_seconds,
        len(result.rejected),
    )
    return (out_path if result.clips else None), len(result.clips)


@stage_task("write-manifest")
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
        "tts": f"{config.tts.engine}:{config.tts.voice}",
    }
    return write_manifest(config, layout, shards, models, counts, notes, flow_run_id)


@flow(name="saladpipe-round", validate_parameters=False)
def salad_round(config: RunConfig) -> Manifest:
    """Ingest, embed, cluster, probe, score, select, synthesize and write one round."""
    from prefect.runtime import flow_run

    log = get_run_logger()
    layout = RunLayout(config.output_path())
    write_text(config.model_dump_json(indent=2), layout.config_copy)
    placeholders = is_builtin(config.models.teacher.source) or is_builtin(
        config.models.student.source
    )
    if placeholders:
        log.warning(PLACEHOLDER_WARNING)

    stats = ingest_task(config, layout)
    log.info(
        "ingest: %d rows read, %d kept, quarantined %s",
        stats.read,
        stats.kept,
        stats.quarantined or "none",
    )
    embeddings = [
        embed_task(config, s, layout.embeddings_shard(i)) for i, s in enumerate(stats.shards)
    ]
    centroids = fit_task(config, embeddings, layout.centroids)
    assignments = [
        assign_task(e, centroids, layout.assignments_shard(i)) for i, e in enumerate(embeddings)
    ]
    probe_shards = probes_task(config, assignments, stats.shards, layout)
    placeholder_dirs = placeholder_task(config, stats.shards) if placeholders else ()
    clips = [
        probe_tts_task(config, p, layout.probe_clips_shard(i), layout.quarantine("probe_tts", i))
        for i, p in enumerate(probe_shards)
    ]
    scores = [
        score_task(config, p, c, layout.scores_shard(i), placeholder_dirs)
        for i, (p, c) in enumerate(zip(probe_shards, clips, strict=True))
    ]
    selected, notes = select_task(config, assignments, stats.shards, scores, layout)
    shard_rows = config.output.shard_rows
    outputs = [
        shard_task(
            config,
            layout.selection(0),
            start,
            min(start + shard_rows, selected),
            layout.output_shard(i),
            layout.quarantine("tts", i),
        )
        for i, start in enumerate(range(0, selected, shard_rows))
    ]
    shards = [path for path, _ in outputs if path is not None]
    counts = {
        "corpus_rows_read": stats.read,
        "corpus_texts": stats.kept,
        "quarantined_ingest": sum(stats.quarantined.values()),
        "clusters": config.cluster.k,
        "selected": selected,
        "synthesized": sum(n for _, n in outputs),
        "shards": len(shards),
    }
    if placeholders:
        notes = [PLACEHOLDER_WARNING, *notes]
    manifest = manifest_task(
        config,
        layout,
        shards,
        probe_shards,
        scores,
        counts,
        notes,
        str(flow_run.id) if flow_run.id else None,
    )
    log.info(
        "run %s: %d of %d selected texts synthesized into %d shards; manifest %s",
        config.run.name,
        counts["synthesized"],
        selected,
        len(shards),
        layout.manifest,
    )
    return manifest


def run_round(config: RunConfig) -> RoundResult:
    """Run the flow against the configured Prefect API, or a local server started for it."""
    layout = RunLayout(config.output_path())
    layout.state.mkdir(parents=True, exist_ok=True)
    logging.getLogger("saladpipe").setLevel(logging.INFO)
    with prefect_api(config.prefect.api_url, layout.state):
        manifest: Any = salad_round(config)
    return RoundResult(layout.root, manifest)
