"""The experiment: does SALAD's selection close the text–speech gap faster than random?

From one stage-I student (heard only a few domains) every arm fine-tunes a copy on
a fixed budget of synthetic speech that its strategy picks from a pool covering all
domains (stage II), and is evaluated on held-out glosses of every domain. The pool
is built as a run builds it (sentence embeddings, balanced k-means), cluster gaps
come from scoring probe texts with the run's scorer, and picks come from the
project's own strategies. An adaptive arm re-scores the probes with its newest
student before each budget step and never re-picks (the product's rounds).

Stage II trains, for every arm alike, on its picks plus as many stage-I rows (the
"natural speech", replayed so that the heard domains are not forgotten), for the
same number of epochs, from the same stage-I weights. Clips are cached across arms,
seeds and runs.
"""

from __future__ import annotations

import copy
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from saladpipe.corpora.wordnet import Gloss
from saladpipe.data_schemas.build_report import BuildReport
from saladpipe.data_schemas.config import ModelSpec, SelectSection
from saladpipe.models.distillation import STATUS_OK, PreparedRow
from saladpipe.models.embedding import Embedder
from saladpipe.models.kmeans import capacity, preferences, stable_match, train_balanced
from saladpipe.models.loading import Teacher, load_student, load_teacher
from saladpipe.models.speech_lm import SpeechAdaptedLM
from saladpipe.progress import logger
from saladpipe.selectors import Budget, Pool, create_strategy
from saladpipe.training.build import (
    BUILTIN_STUDENT,
    BUILTIN_TEACHER,
    ensure_models,
)
from saladpipe.training.distill import distill, prepare_rows, score_items, scorer_for
from saladpipe.training.evaluate import EvalSet, Evaluation, evaluate, make_eval_set
from saladpipe.training.optim import TRAIN_THREADS, torch_threads
from saladpipe.training.recipe import (
    DEFAULT_RECIPE,
    REDUCED_RECIPE,
    BuildRecipe,
    DistillRecipe,
)
from saladpipe.training.speech import (
    ClipCache,
    SpeechReport,
    SpokenPrefix,
    speech_settings,
    spoken_prefixes,
)
from saladpipe.training.texts import build_texts, sample_per_domain, split_glosses


@dataclass(frozen=True)
class Arm:
    """A way to pick stage II's synthetic speech."""

    name: str
    strategy: str
    gamma: float = 0.0
    # Re-score the probes with the newest student before each budget step (rounds).
    adaptive: bool = False


DEFAULT_ARMS = (
    Arm("random", "random"),
    Arm("top_k", "top_k"),
    Arm("salad-g1", "salad", gamma=1.0),
    Arm("salad-g5", "salad", gamma=5.0),
    Arm("salad-g5-rounds", "salad", gamma=5.0, adaptive=True),
)


@dataclass(frozen=True)
class ExperimentConfig:
    """Sizes of everything; `budgets` ascend, each is a separate stage-II fine-tune."""

    build: BuildRecipe = DEFAULT_RECIPE
    pool_per_domain: int = 500
    clusters: int = 24
    probes_per_cluster: int = 8
    eval_per_domain: int = 40
    choices: int = 4
    budgets: tuple[int, ...] = (100, 200, 300)
    seeds: tuple[int, ...] = (0, 1, 2)
    arms: tuple[Arm, ...] = DEFAULT_ARMS
    stage2: DistillRecipe = field(default_factory=lambda: DistillRecipe(epochs=4))
    # Stage-I rows replayed per selected row in the stage-II mix.
    replay: float = 1.0
    embedder: str = "builtin:all-MiniLM-L6-v2"
    # Seed of the pool, probes and evaluation set (the same for every arm and seed).
    data_seed: int = 0

    def __post_init__(self) -> None:
        if list(self.budgets) != sorted(set(self.budgets)) or min(self.budgets) < 1:
            raise ValueError(f"budgets must be distinct, positive and ascending: {self.budgets}")


# Minutes on 2 cores, for the test suite: every arm trains and is evaluated once.
REDUCED_EXPERIMENT = ExperimentConfig(
    build=REDUCED_RECIPE,
    pool_per_domain=4,
    clusters=4,
    probes_per_cluster=2,
    eval_per_domain=1,
    budgets=(4, 8),
    seeds=(0,),
    stage2=DistillRecipe(epochs=1, batch_size=4),
)


@dataclass(frozen=True)
class PoolState:
    """The experiment's pool: glosses, their clusters, the probes and their clips."""

    glosses: list[Gloss]
    clusters: np.ndarray
    probes: list[SpokenPrefix]
    probe_clusters: np.ndarray


@dataclass
class Results:
    """Everything the report needs, as plain data (JSON-ready)."""

    config: dict[str, Any]
    build: dict[str, Any]
    stage1: dict[str, Any]
    clusters: list[dict[str, Any]]
    records: list[dict[str, Any]] = field(default_factory=list)
    speech: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def draw_glosses(cfg: ExperimentConfig) -> tuple[list[Gloss], list[Gloss], list[Gloss]]:
    """(stage-I glosses, pool glosses, evaluation glosses): the same for every arm and seed.

    The pool never holds a stage-I gloss; the evaluation set holds held-out glosses only.
    """
    train, held_out = split_glosses()
    stage1_glosses = build_texts(cfg.build).stage1
    rng = np.random.default_rng(cfg.data_seed)
    seen = {g.synset_id for g in stage1_glosses}
    pool = sample_per_domain(train, cfg.pool_per_domain, rng, exclude=seen)
    evaluation = sample_per_domain(held_out, cfg.eval_per_domain, rng)
    return list(stage1_glosses), pool, evaluation


def _cluster_pool(embedder: Embedder, glosses: Sequence[Gloss], k: int, seed: int) -> np.ndarray:
    """Balanced spherical k-means on sentence embeddings, as a run clusters its pool."""
    vectors = embedder.embed([g.text for g in glosses])
    centroids = train_balanced(vectors, k, iterations=20, seed=seed)
    choices, similarity = preferences(vectors, centroids, k)
    return stable_match(choices, similarity, np.full(k, capacity(len(glosses), k)))


def _draw_probes(clusters: np.ndarray, per_cluster: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    picks = [
        np.sort(rng.choice(members, size=min(per_cluster, members.size), replace=False))
        for members in (np.flatnonzero(clusters == c) for c in np.unique(clusters))
    ]
    return np.concatenate(picks)


def cluster_gaps(
    teacher: Teacher, student: SpeechAdaptedLM, pool: PoolState, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """M(c), the mean misalignment of each cluster's scored probes (clusters without one
    take the mean of all), and the number of scored probes per cluster."""
    results = scorer_for(teacher, student).score(score_items(pool.probes))
    ok = np.array([r.status == STATUS_OK for r in results])
    values = np.array([r.misalignment if r.misalignment is not None else 0.0 for r in results])
    sums = np.bincount(pool.probe_clusters[ok], weights=values[ok], minlength=k)
    counts = np.bincount(pool.probe_clusters[ok], minlength=k)
    fill = float(values[ok].mean()) if ok.any() else 1.0
    return np.where(counts > 0, sums / np.maximum(counts, 1), fill), counts


class Experiment:
    """Runs the arms of one configuration; `run` returns the results."""

    def __init__(self, config: ExperimentConfig, cache_root: Path) -> None:
        self.config = config
        self.cache_root = cache_root
        self.heard = set(config.build.heard_domains)
        self.speech = SpeechReport()

    def _spoken(self, cache: ClipCache, glosses: Sequence[Gloss], what: str) -> list[SpokenPrefix]:
        items, report = spoken_prefixes(glosses, cache, what)
        self.speech.add(report)
        return items

    def run(self) -> Results:
        started = time.monotonic()
        cfg = self.config
        dirs = ensure_models(cfg.build, self.cache_root)
        with torch_threads(TRAIN_THREADS):
            teacher = load_teacher(ModelSpec(source=str(dirs[BUILTIN_TEACHER])), "cpu", "float32")
            stage1 = load_student(ModelSpec(source=str(dirs[BUILTIN_STUDENT])), "cpu", "float32")
            assert isinstance(stage1, SpeechAdaptedLM)
            with ClipCache(self.cache_root, speech_settings(cfg.build.voice)) as cache:
                pool, eval_set, replay = self._data(cache, teacher, stage1)
                results = self._stage1_results(teacher, stage1, pool, eval_set)
                results.build = asdict(BuildReport.read(dirs[BUILTIN_TEACHER].parent))
                for seed in cfg.seeds:
                    for arm in cfg.arms:
                        results.records += self._arm(
                            arm, seed, teacher, stage1, pool, eval_set, replay, cache
                        )
        results.speech = {
            "asked": self.speech.asked,
            "synthesized": self.speech.synthesized,
            "rejected": dict(self.speech.rejected),
        }
        results.seconds = round(time.monotonic() - started, 1)
        return results

    def _data(
        self, cache: ClipCache, teacher: Teacher, stage1: SpeechAdaptedLM
    ) -> tuple[PoolState, EvalSet, list[PreparedRow]]:
        """Pool (clustered, probes spoken), evaluation set, and the stage-I rows to replay."""
        cfg = self.config
        stage1_glosses, glosses, eval_glosses = draw_glosses(cfg)
        embedder = Embedder(cfg.embedder, "cpu", 64)
        clusters = _cluster_pool(embedder, glosses, cfg.clusters, cfg.data_seed)
        probe_rows = _draw_probes(clusters, cfg.probes_per_cluster, cfg.data_seed)
        probe_items = self._spoken(cache, [glosses[i] for i in probe_rows], "probe prefixes")
        by_id = {g.synset_id: i for i, g in enumerate(glosses)}
        pool = PoolState(
            glosses,
            clusters,
            probe_items,
            clusters[[by_id[item.text_id] for item in probe_items]],
        )
        eval_items = self._spoken(cache, eval_glosses, "evaluation prefixes")
        eval_set = make_eval_set(teacher, stage1, eval_items, cfg.choices, cfg.data_seed)
        stage1_items = self._spoken(cache, stage1_glosses, "stage-I prefixes")
        replay, _ = prepare_rows(scorer_for(teacher, stage1), stage1_items)
        return pool, eval_set, replay

    def _stage1_results(
        self, teacher: Teacher, stage1: SpeechAdaptedLM, pool: PoolState, eval_set: EvalSet
    ) -> Results:
        """Per-domain misalignment of the stage-I student, and its ranking of the clusters."""
        cfg = self.config
        evaluation = evaluate(teacher, stage1, eval_set)
        gaps, counts = cluster_gaps(teacher, stage1, pool, cfg.clusters)
        domains = [g.domain for g in pool.glosses]
        clusters = []
        for c in np.argsort(-gaps, kind="stable"):
            members = Counter(domains[i] for i in np.flatnonzero(pool.clusters == c))
            top, count = members.most_common(1)[0]
            clusters.append(
                {
                    "cluster": int(c),
                    "gap": float(gaps[c]),
                    "probes_scored": int(counts[c]),
                    "size": int(sum(members.values())),
                    "domain": top,
                    "domain_share": count / sum(members.values()),
                    "heard": top in self.heard,
                }
            )
        summary = {
            "evaluation": {**asdict(evaluation), "accuracy_gap": evaluation.accuracy_gap},
            "eval_rows": len(eval_set.rows),
            "eval_refused": dict(eval_set.refused),
            "heard_domains": sorted(self.heard),
        }
        return Results(config=asdict(cfg), build={}, stage1=summary, clusters=clusters)

    def _arm(
        self,
        arm: Arm,
        seed: int,
        teacher: Teacher,
        stage1: SpeechAdaptedLM,
        pool: PoolState,
        eval_set: EvalSet,
        replay: Sequence[PreparedRow],
        cache: ClipCache,
    ) -> list[dict[str, Any]]:
        """Every budget of one arm and seed: pick, fine-tune from stage I, evaluate."""
        cfg = self.config
        k = cfg.clusters
        strategy = create_strategy(
            SelectSection.model_validate({"strategy": arm.strategy, "salad": {"gamma": arm.gamma}})
        )
        gaps, _ = cluster_gaps(teacher, stage1, pool, k)
        picked = np.zeros(0, dtype=np.int64)
        records = []
        for step, budget in enumerate(cfg.budgets):
            rng = np.random.default_rng([seed, cfg.arms.index(arm), step])
            if arm.adaptive:
                eligible = np.ones(len(pool.glosses), dtype=bool)
                eligible[picked] = False
                chosen = strategy.select(
                    Pool(pool.clusters, gaps, eligible=eligible),
                    Budget(budget - picked.size),
                    rng,
                )
                picked = np.concatenate([picked, chosen.indices])
            else:
                picked = strategy.select(Pool(pool.clusters, gaps), Budget(budget), rng).indices
            label = f"{arm.name} seed {seed} budget {budget}"
            items = self._spoken(cache, [pool.glosses[i] for i in picked], label)
            student = copy.deepcopy(stage1)
            rows, refused = prepare_rows(scorer_for(teacher, student), items)
            mix_rng = np.random.default_rng([seed, budget])
            extra = min(len(replay), round(cfg.replay * len(rows)))
            mix = rows + [replay[i] for i in mix_rng.choice(len(replay), extra, replace=False)]
            losses = distill(
                teacher,
                student,
                mix,
                cfg.stage2,
                seed,
                f"stage II: {label}",
                train_encoder=cfg.build.encoder.trainable,
            )
            evaluation = evaluate(teacher, student, eval_set)
            if arm.adaptive:
                gaps, _ = cluster_gaps(teacher, student, pool, k)
            records.append(
                _record(arm, seed, budget, picked, pool, rows, refused, losses, evaluation)
            )
            logger.info(
                "%s: misalignment %.4f, speech accuracy %.3f",
                label,
                evaluation.misalignment,
                evaluation.speech_accuracy,
            )
        return records


def _record(
    arm: Arm,
    seed: int,
    budget: int,
    picked: np.ndarray,
    pool: PoolState,
    rows: Sequence[PreparedRow],
    refused: Counter[str],
    losses: list[float],
    evaluation: Evaluation,
) -> dict[str, Any]:
    domains = Counter(pool.glosses[i].domain for i in picked)
    return {
        "arm": arm.name,
        "seed": seed,
        "budget": budget,
        "picked": int(picked.size),
        "trained_rows": len(rows),
        "refused_rows": dict(refused),
        "picked_domains": dict(sorted(domains.items())),
        "final_loss": losses[-1],
        **asdict(evaluation),
        "accuracy_gap": evaluation.accuracy_gap,
    }


def run_experiment(config: ExperimentConfig, cache_root: Path) -> Results:
    """Build (or reuse) the models, then run every arm, seed and budget."""
    return Experiment(config, cache_root).run()
