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

The concentration sweep repeats this from stage-I students that heard more of the
pool's domains (3, 6 and 9 of 12 by default: the same teacher, the same pool and
evaluation set), since active selection can only save budget where random spends it
on domains the student already knows. With a frozen pretrained encoder every
student hears a clip alike, so each clip is encoded once for the whole experiment.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from saladpipe.corpora.wordnet import DEFAULT_DOMAINS, Gloss
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
    build_threads,
    ensure_models,
)
from saladpipe.training.distill import distill, prepare_rows, score_items, scorer_for
from saladpipe.training.evaluate import EvalSet, Evaluation, evaluate, make_eval_set
from saladpipe.training.optim import torch_threads
from saladpipe.training.recipe import (
    DEFAULT_RECIPE,
    REDUCED_RECIPE,
    SMOLLM2_RECIPE,
    BuildRecipe,
    DistillRecipe,
    PretrainedEncoderRecipe,
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


# The arms of the concentration sweep's other settings (the first setting runs them all).
SWEEP_ARMS = ("random", "top_k", "salad-g5")


@dataclass(frozen=True)
class ExperimentConfig:
    """Sizes of everything; `budgets` ascend, each is a separate stage-II fine-tune.

    `concentrations`: how many domains each stage-I student has heard; the first is the
    build's own (all arms and budgets), the others run `sweep_arms` at the largest budget.
    Heard domains are taken in the order of `heard_order` (the build's, then the rest).
    """

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
    concentrations: tuple[int, ...] = (3, 6, 9)
    sweep_arms: tuple[str, ...] = SWEEP_ARMS

    def __post_init__(self) -> None:
        if list(self.budgets) != sorted(set(self.budgets)) or min(self.budgets) < 1:
            raise ValueError(f"budgets must be distinct, positive and ascending: {self.budgets}")
        first = len(self.build.heard_domains)
        if not self.concentrations or self.concentrations[0] != first:
            raise ValueError(f"concentrations must start at the build's {first} heard domains")
        if len(set(self.concentrations)) != len(self.concentrations) or max(
            self.concentrations
        ) >= len(self.heard_order):
            raise ValueError(
                f"concentrations must be distinct and leave an unheard domain: "
                f"{self.concentrations}"
            )
        unknown = set(self.sweep_arms) - {arm.name for arm in self.arms}
        if unknown:
            raise ValueError(f"sweep_arms not among the arms: {sorted(unknown)}")

    @property
    def heard_order(self) -> tuple[str, ...]:
        """The build's heard domains, then the other domains in WordNet's file order."""
        rest = [d for d in DEFAULT_DOMAINS.values() if d not in self.build.heard_domains]
        return (*self.build.heard_domains, *rest)

    def recipe_for(self, heard: int) -> BuildRecipe:
        """The build recipe of the stage-I student that heard `heard` domains."""
        return dataclasses.replace(self.build, heard_domains=self.heard_order[:heard])

    def arms_for(self, heard: int) -> tuple[tuple[Arm, ...], tuple[int, ...]]:
        """(arms, budgets) run from the student that heard `heard` domains."""
        if heard == self.concentrations[0]:
            return self.arms, self.budgets
        return tuple(a for a in self.arms if a.name in self.sweep_arms), self.budgets[-1:]


# The paper's shape at the smallest real size (SmolLM2-135M teacher, a student around a
# frozen copy of it): the same grid as the default. About 5 hours on 2 CPU cores
# (docs/experiments.md); `--models smollm2 --device cuda` runs it on a GPU.
SMOLLM2_EXPERIMENT = ExperimentConfig(build=SMOLLM2_RECIPE)

# Minutes on 2 cores, for the test suite: every arm trains and is evaluated once, the
# sweep's second setting too; the pretrained encoder as the full experiment has it.
REDUCED_EXPERIMENT = ExperimentConfig(
    build=dataclasses.replace(REDUCED_RECIPE, encoder=PretrainedEncoderRecipe(adapter_hidden=64)),
    concentrations=(2, 3),
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
    """Everything the report needs, as plain data (JSON-ready). `settings` holds one entry
    per concentration (heard domains, build report, stage-I evaluation, cluster ranking),
    the build's own first; each record names the setting by its number of heard domains."""

    config: dict[str, Any]
    settings: list[dict[str, Any]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    speech: dict[str, Any] = field(default_factory=dict)
    encoded_clips: int = 0
    seconds: float = 0.0


def draw_glosses(cfg: ExperimentConfig) -> tuple[list[Gloss], list[Gloss], list[Gloss]]:
    """(the build's stage-I glosses, pool glosses, evaluation glosses): the same for every
    arm, seed and setting.

    The pool holds no stage-I gloss of any setting; the evaluation set holds held-out
    glosses only, drawn from its own seed stream (it does not move with the pool).
    """
    train, held_out = split_glosses()
    seen = {
        g.synset_id
        for heard in cfg.concentrations
        for g in build_texts(cfg.recipe_for(heard)).stage1
    }
    pool = sample_per_domain(
        train, cfg.pool_per_domain, np.random.default_rng([cfg.data_seed, 0]), exclude=seen
    )
    evaluation = sample_per_domain(
        held_out, cfg.eval_per_domain, np.random.default_rng([cfg.data_seed, 1])
    )
    return list(build_texts(cfg.build).stage1), pool, evaluation


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


@dataclass(frozen=True)
class Setting:
    """One point of the concentration sweep: its stage-I student and the rows it replays."""

    heard: tuple[str, ...]
    stage1: SpeechAdaptedLM
    replay: list[PreparedRow]


class Experiment:
    """Runs the arms of one configuration; `run` returns the results."""

    def __init__(self, config: ExperimentConfig, cache_root: Path, device: str = "cpu") -> None:
        self.config = config
        self.cache_root = cache_root
        self.device = device
        self.speech = SpeechReport()

    def _spoken(self, cache: ClipCache, glosses: Sequence[Gloss], what: str) -> list[SpokenPrefix]:
        items, report = spoken_prefixes(glosses, cache, what)
        self.speech.add(report)
        return items

    def run(self) -> Results:
        started = time.monotonic()
        cfg = self.config
        builds = {
            k: ensure_models(cfg.recipe_for(k), self.cache_root, device=self.device)
            for k in cfg.concentrations
        }
        first = builds[cfg.concentrations[0]]
        results = Results(config=asdict(cfg))
        with torch_threads(build_threads(cfg.build)):
            # Every setting's teacher is the same one (one seed, one teacher recipe).
            teacher_spec = ModelSpec(source=str(first[BUILTIN_TEACHER]))
            teacher = load_teacher(teacher_spec, self.device, "float32")
            students = {heard: self._student(dirs) for heard, dirs in builds.items()}
            memo = None
            if not cfg.build.encoder.trainable:
                # One frozen encoder for all settings: each clip is encoded once.
                memo = students[cfg.concentrations[0]].new_frame_memo()
                for student in students.values():
                    student.use_frame_memo(memo)
            with ClipCache(self.cache_root, speech_settings(cfg.build.voice)) as cache:
                pool, eval_set = self._data(cache, teacher, students[cfg.concentrations[0]])
                for heard, dirs in builds.items():
                    student = students[heard]
                    setting = self._setting(cache, teacher, student, heard)
                    summary = self._stage1_results(teacher, setting, pool, eval_set)
                    summary["build"] = asdict(BuildReport.read(dirs[BUILTIN_TEACHER].parent))
                    results.settings.append(summary)
                    arms, budgets = cfg.arms_for(heard)
                    for seed in cfg.seeds:
                        for arm in arms:
                            results.records += self._arm(
                                arm, seed, budgets, teacher, setting, pool, eval_set, cache
                            )
        results.speech = {
            "asked": self.speech.asked,
            "synthesized": self.speech.synthesized,
            "rejected": dict(self.speech.rejected),
        }
        results.encoded_clips = 0 if memo is None else len(memo)
        results.seconds = round(time.monotonic() - started, 1)
        return results

    def _student(self, dirs: dict[str, Path]) -> SpeechAdaptedLM:
        spec = ModelSpec(source=str(dirs[BUILTIN_STUDENT]))
        student = load_student(spec, self.device, "float32")
        assert isinstance(student, SpeechAdaptedLM)
        return student

    def _data(
        self, cache: ClipCache, teacher: Teacher, student: SpeechAdaptedLM
    ) -> tuple[PoolState, EvalSet]:
        """Pool (clustered, probes spoken) and evaluation set: the same for every setting."""
        cfg = self.config
        _, glosses, eval_glosses = draw_glosses(cfg)
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
        eval_set = make_eval_set(teacher, student, eval_items, cfg.choices, cfg.data_seed)
        return pool, eval_set

    def _setting(
        self, cache: ClipCache, teacher: Teacher, student: SpeechAdaptedLM, heard: int
    ) -> Setting:
        recipe = self.config.recipe_for(heard)
        items = self._spoken(cache, build_texts(recipe).stage1, f"stage-I prefixes ({heard})")
        replay, _ = prepare_rows(scorer_for(teacher, student), items)
        return Setting(recipe.heard_domains, student, replay)

    def _stage1_results(
        self, teacher: Teacher, setting: Setting, pool: PoolState, eval_set: EvalSet
    ) -> dict[str, Any]:
        """Per-domain misalignment of a stage-I student, and its ranking of the clusters."""
        cfg = self.config
        heard = set(setting.heard)
        evaluation = evaluate(teacher, setting.stage1, eval_set)
        gaps, counts = cluster_gaps(teacher, setting.stage1, pool, cfg.clusters)
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
                    "heard": top in heard,
                }
            )
        return {
            "heard": len(heard),
            "stage1": {
                "evaluation": {**asdict(evaluation), "accuracy_gap": evaluation.accuracy_gap},
                "eval_rows": len(eval_set.rows),
                "eval_refused": dict(eval_set.refused),
                "heard_domains": sorted(heard),
            },
            "clusters": clusters,
        }

    def _arm(
        self,
        arm: Arm,
        seed: int,
        budgets: Sequence[int],
        teacher: Teacher,
        setting: Setting,
        pool: PoolState,
        eval_set: EvalSet,
        cache: ClipCache,
    ) -> list[dict[str, Any]]:
        """Every budget of one arm and seed: pick, fine-tune from stage I, evaluate."""
        cfg = self.config
        k = cfg.clusters
        stage1, replay = setting.stage1, setting.replay
        strategy = create_strategy(
            SelectSection.model_validate({"strategy": arm.strategy, "salad": {"gamma": arm.gamma}})
        )
        gaps, _ = cluster_gaps(teacher, stage1, pool, k)
        picked = np.zeros(0, dtype=np.int64)
        records = []
        for step, budget in enumerate(budgets):
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
            label = f"{arm.name} seed {seed} budget {budget}, {len(setting.heard)} heard"
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
            record = _record(arm, seed, budget, picked, pool, rows, refused, losses, evaluation)
            records.append({"heard": len(setting.heard), **record})
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


def run_experiment(config: ExperimentConfig, cache_root: Path, device: str = "cpu") -> Results:
    """Build (or reuse) the models, then run every arm, seed and budget on `device`."""
    return Experiment(config, cache_root, device).run()
