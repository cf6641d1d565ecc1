"""Builtin corpora that install offline, for the embedded default and tests."""

from pathlib import Path

import pyarrow.parquet as pq

from saladpipe.corpora.wordnet import build_wordnet_corpus
from saladpipe.data_schemas.io import atomic_path


def builtin_corpus_path(name: str, per_domain: int, seed: int, cache_root: Path) -> Path:
    """Build the named builtin corpus once and return its cached Parquet file."""
    path = cache_root / "corpora" / f"{name}-v1-{per_domain}-seed{seed}.parquet"
    if not path.is_file():
        table = build_wordnet_corpus(per_domain=per_domain, seed=seed)
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)
    return path
