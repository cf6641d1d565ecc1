"""Probe: draw a few texts of each cluster and split each into spoken prefix and text continuation.

The student hears the prefix and must predict the continuation as the teacher
would having read the prefix; the split rule is part of the config: by a fraction
of the words, by a number of words, or where the corpus's split columns put it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.config import ProbeSection
from saladpipe.data_schemas.errors import SchemaError
from saladpipe.data_schemas.io import read_table, write_table
from saladpipe.data_schemas.layout import RunLayout
from saladpipe.pipeline.split_columns import read_splits
from saladpipe.pipeline.stage import Stage


def split_text(text: str, cfg: ProbeSection, prefix_chars: int | None = None) -> tuple[str, str]:
    """Split at a word boundary; both sides keep at least one word when the text has two.

    `fraction` puts round(n · prefix_fraction) words in the prefix, `words` a fixed count.
    A one-word text has an empty continuation, which scoring reports per row.
    `columns` splits after the first `prefix_chars` characters, as the corpus gave it.
    """
    if cfg.split == "columns":
        if prefix_chars is None:
            raise SchemaError("probe.split = 'columns' but the text has no split position")
        return text[:prefix_chars].strip(), text[prefix_chars:].strip()
    words = text.split()
    if len(words) < 2:
        return text.strip(), ""
    wanted = (
        round(len(words) * cfg.prefix_fraction) if cfg.split == "fraction" else cfg.prefix_words
    )
    cut = min(max(1, wanted), len(words) - 1)
    return " ".join(words[:cut]), " ".join(words[cut:])


def load_pool(
    assignment_shards: list[Path],
    corpus_shards: list[Path],
    splits: list[Path] | None = None,
) -> pa.Table:
    """The whole pool as one table: text_id, cluster, text, domain (texts in corpus order).

    With `splits` (of a split-column corpus) it also has each text's prefix_chars.
    """
    assignments = pa.concat_tables(
        [
            read_table(p, tables.ASSIGNMENTS, columns=["text_id", "cluster"])
            for p in assignment_shards
        ]
    )
    corpus = pa.concat_tables(
        [read_table(p, tables.CORPUS, columns=["text_id", "text", "domain"]) for p in corpus_shards]
    )
    corpus_order = corpus.column("text_id")
    if splits:
        corpus = corpus.join(read_splits(splits), keys="text_id", join_type="left outer")
    joined = corpus.join(assignments, keys="text_id", join_type="inner")
    order = pc.index_in(corpus_order, value_set=joined.column("text_id"))
    return joined.take(pc.drop_null(order))


def draw_probes(pool: pa.Table, cfg: ProbeSection, seed: int, layout: RunLayout) -> list[Path]:
    """Draw up to `per_cluster` texts of each cluster (seeded) and write them in probe shards."""
    rng = np.random.default_rng(seed)
    clusters = pool.column("cluster").to_numpy()
    picks: list[np.ndarray] = []
    for cluster in np.unique(clusters):
        members = np.flatnonzero(clusters == cluster)
        picks.append(
            np.sort(rng.choice(members, size=min(cfg.per_cluster, members.size), replace=False))
        )
    chosen = pool.take(pa.array(np.concatenate(picks)))
    prefix_chars: Sequence[int | None] = (
        chosen.column("prefix_chars").to_pylist()  # null for a text the splits do not name
        if "prefix_chars" in chosen.column_names
        else [None] * chosen.num_rows
    )
    splits = [
        split_text(t, cfg, chars)
        for t, chars in zip(tables.strings(chosen.column("text")), prefix_chars, strict=True)
    ]
    probes = pa.table(
        {
            "text_id": chosen.column("text_id"),
            "cluster": chosen.column("cluster"),
            "text": chosen.column("text"),
            "prefix_text": [s[0] for s in splits],
            "continuation_text": [s[1] for s in splits],
        }
    )
    paths = []
    for index, start in enumerate(range(0, probes.num_rows, cfg.shard_rows)):
        path = layout.probes_shard(index)
        write_table(probes.slice(start, cfg.shard_rows), path, tables.PROBES)
        paths.append(path)
    return paths


def draw_probe_shards(
    assignments: list[Path],
    corpus_shards: list[Path],
    splits: list[Path],
    probe: ProbeSection,
    seed: int,
    layout: RunLayout,
) -> list[Path]:
    """The probe stage: the pool as clustered, its probes drawn and written in shards."""
    return draw_probes(load_pool(assignments, corpus_shards, splits), probe, seed, layout)


DRAW = Stage("draw-probes", draw_probe_shards, reads=("assignments", "corpus_shards", "splits"))
