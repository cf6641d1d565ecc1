"""Which WordNet glosses each model and experiment may see.

A fixed share of the glosses, chosen by a hash of the synset id (so it does not move
with any seed), is held out: no model trains on it, and evaluations draw from it.
Everything else may be sampled, per domain, with a seed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from saladpipe.corpora.wordnet import Gloss, read_glosses
from saladpipe.training.recipe import BuildRecipe

# 1 in 16 glosses (about 3,100 of the default domains' 50,000) is held out.
HELD_OUT_BUCKETS = 16


def is_held_out(synset_id: str) -> bool:
    digest = hashlib.sha256(synset_id.encode("utf-8")).digest()
    return digest[0] % HELD_OUT_BUCKETS == 0


def split_glosses(
    by_domain: Mapping[str, Sequence[Gloss]] | None = None,
) -> tuple[dict[str, list[Gloss]], dict[str, list[Gloss]]]:
    """(trainable, held out) glosses of each domain, both sorted by synset id."""
    by_domain = by_domain if by_domain is not None else read_glosses()
    train = {d: [g for g in gs if not is_held_out(g.synset_id)] for d, gs in by_domain.items()}
    held = {d: [g for g in gs if is_held_out(g.synset_id)] for d, gs in by_domain.items()}
    return train, held


def sample_per_domain(
    by_domain: Mapping[str, Sequence[Gloss]],
    per_domain: int,
    rng: np.random.Generator,
    domains: Collection[str] | None = None,
    exclude: Collection[str] = (),
) -> list[Gloss]:
    """Up to `per_domain` glosses of each wanted domain (all when None), not in `exclude`."""
    chosen: list[Gloss] = []
    for name in sorted(by_domain):
        if domains is not None and name not in domains:
            continue
        glosses = [g for g in by_domain[name] if g.synset_id not in exclude]
        take = min(per_domain, len(glosses))
        picks = np.sort(rng.choice(len(glosses), size=take, replace=False))
        chosen.extend(glosses[i] for i in picks)
    return chosen


def sample_all(
    by_domain: Mapping[str, Sequence[Gloss]], count: int, rng: np.random.Generator
) -> list[Gloss]:
    """`count` glosses drawn uniformly from all domains together (all when fewer)."""
    everything = [g for name in sorted(by_domain) for g in by_domain[name]]
    take = min(count, len(everything))
    return [everything[i] for i in np.sort(rng.choice(len(everything), size=take, replace=False))]


@dataclass(frozen=True)
class BuildTexts:
    """The texts a build trains and measures on, all drawn from the recipe's seed."""

    teacher: list[str]  # every domain, trainable glosses (a pretrained teacher's unigram)
    stage1: list[Gloss]  # heard domains only, trainable glosses
    perplexity: list[str]  # held-out glosses


def build_texts(recipe: BuildRecipe) -> BuildTexts:
    train, held_out = split_glosses()
    rng = np.random.default_rng(recipe.seed)
    teacher = [g.text for g in sample_all(train, recipe.teacher.texts, rng)]
    stage1 = sample_per_domain(
        train, recipe.stage1_texts_per_domain, rng, domains=recipe.heard_domains
    )
    perplexity = [g.text for g in sample_all(held_out, recipe.teacher.perplexity_texts, rng)]
    return BuildTexts(teacher, stage1, perplexity)
