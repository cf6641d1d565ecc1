"""Embed: one sentence-embedding vector per text of a corpus shard (`models/embedding.py`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.io import read_table, write_table
from saladpipe.models.embedding import Embedder
from saladpipe.pipeline.stage import Stage
from saladpipe.progress import Progress


def embed_shard(corpus_shard: Path, out_path: Path, embedder: Embedder) -> Path:
    """Embed every text of one corpus shard into `out_path`."""
    corpus = read_table(corpus_shard, tables.CORPUS, columns=["text_id", "text"])
    texts = tables.strings(corpus.column("text"))
    chunks = []
    step = embedder.batch_size * 8
    with Progress(f"embed {corpus_shard.name}", len(texts), "texts") as progress:
        for start in range(0, len(texts), step):
            chunks.append(embedder.embed(texts[start : start + step]))
            progress.update(len(chunks[-1]))
    vectors = np.concatenate(chunks) if chunks else np.zeros((0, embedder.dim), np.float32)
    column = pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), embedder.dim)
    table = pa.table({"text_id": corpus.column("text_id"), "embedding": column})
    write_table(table, out_path, tables.embeddings_schema(embedder.dim))
    return out_path


EMBED = Stage(
    "embed-shard",
    embed_shard,
    reads=("corpus_shard",),
    keeps=("out_path",),
    needs=("embedder",),
)
