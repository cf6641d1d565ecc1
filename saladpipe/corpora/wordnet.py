"""A multi-domain English corpus from WordNet glosses (Debian's `wordnet-base`).

Each synset's gloss becomes one text, "lemma: definition.", labelled with the
synset's lexicographer file (noun.animal, noun.food, verb.motion, ...). The domains
are distinct in vocabulary and topic, so later work can check clusters against them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from saladpipe.data_schemas.errors import ConfigError

WORDNET_DIR = Path("/usr/share/wordnet")

# Lexicographer file numbers (lexnames(5WN)) of the default domains: twelve topics
# with at least 1,000 synsets each.
DEFAULT_DOMAINS: dict[int, str] = {
    5: "noun.animal",
    20: "noun.plant",
    13: "noun.food",
    8: "noun.body",
    6: "noun.artifact",
    18: "noun.person",
    15: "noun.location",
    27: "noun.substance",
    10: "noun.communication",
    9: "noun.cognition",
    28: "noun.time",
    38: "verb.motion",
}
_POS_FILES = {"n": "data.noun", "v": "data.verb"}
MIN_WORDS = 6


@dataclass(frozen=True)
class Gloss:
    """One synset's gloss with its identity and domain."""

    synset_id: str
    domain: str
    text: str


def parse_data_file(path: Path, domains: dict[int, str]) -> Iterator[Gloss]:
    """Yield the glosses of one WordNet data file whose lexicographer file is in `domains`."""
    with path.open(encoding="utf-8", errors="strict") as fh:
        for line in fh:
            if line.startswith("  "):  # licence header
                continue
            head, _, gloss = line.partition(" | ")
            fields = head.split(" ")
            lex_file = int(fields[1])
            if lex_file not in domains:
                continue
            lemma = fields[4].replace("_", " ")
            lemma = lemma.split("(")[0]  # adjective markers such as (a), (p)
            definition = gloss.split('; "')[0].strip().rstrip(";").strip()
            if len(definition.split()) < MIN_WORDS:
                continue
            yield Gloss(
                synset_id=f"wn:{fields[2]}{fields[0]}",
                domain=domains[lex_file],
                text=f"{lemma[:1].upper()}{lemma[1:]}: {definition}.",
            )


def read_glosses(
    wordnet_dir: Path = WORDNET_DIR, domains: dict[int, str] | None = None
) -> dict[str, list[Gloss]]:
    """Every usable gloss of each domain, sorted by synset id."""
    domains = domains or DEFAULT_DOMAINS
    missing = [name for name in _POS_FILES.values() if not (wordnet_dir / name).is_file()]
    if missing:
        raise ConfigError(
            f"corpus.builtin: WordNet data not found in {wordnet_dir} ({', '.join(missing)}); "
            "install Debian's wordnet-base (scripts/setup.sh does)"
        )
    by_domain: dict[str, list[Gloss]] = {name: [] for name in domains.values()}
    for pos_file in _POS_FILES.values():
        for gloss in parse_data_file(wordnet_dir / pos_file, domains):
            by_domain[gloss.domain].append(gloss)
    return {name: sorted(glosses, key=lambda g: g.synset_id) for name, glosses in by_domain.items()}


def build_wordnet_corpus(
    per_domain: int,
    seed: int = 0,
    wordnet_dir: Path = WORDNET_DIR,
    domains: dict[int, str] | None = None,
) -> pa.Table:
    """Sample up to `per_domain` glosses of each domain, reproducibly from `seed`.

    Returns a table with columns id, text, domain, ordered by domain then id.
    """
    by_domain = read_glosses(wordnet_dir, domains)
    rng = np.random.default_rng(seed)
    chosen: list[Gloss] = []
    for name in sorted(by_domain):
        glosses = by_domain[name]
        take = min(per_domain, len(glosses))
        picks = np.sort(rng.choice(len(glosses), size=take, replace=False))
        chosen.extend(glosses[i] for i in picks)
    return pa.table(
        {
            "id": [g.synset_id for g in chosen],
            "text": [g.text for g in chosen],
            "domain": [g.domain for g in chosen],
        }
    )
