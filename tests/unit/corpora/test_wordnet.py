"""The builtin corpus: real multi-domain English from Debian's WordNet, reproducible."""

from __future__ import annotations

import collections

from saladpipe.corpora.wordnet import DEFAULT_DOMAINS, build_wordnet_corpus
from saladpipe.data_schemas.tables import strings


def test_default_size_covers_twelve_domains() -> None:
    table = build_wordnet_corpus(per_domain=500, seed=0)
    domains = collections.Counter(table.column("domain").to_pylist())
    assert table.num_rows >= 5000
    assert len(domains) >= 8 and set(domains) == set(DEFAULT_DOMAINS.values())
    assert min(domains.values()) == 500
    ids = table.column("id").to_pylist()
    assert len(ids) == len(set(ids))
    for text in strings(table.column("text"))[:50]:
        assert ": " in text and text.endswith(".") and len(text.split()) >= 7


def test_same_seed_same_corpus_other_seed_other_sample() -> None:
    a = build_wordnet_corpus(per_domain=20, seed=1)
    assert a.equals(build_wordnet_corpus(per_domain=20, seed=1))
    assert not a.equals(build_wordnet_corpus(per_domain=20, seed=2))
