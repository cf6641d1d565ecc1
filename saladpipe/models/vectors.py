"""Embedding vectors of chosen pool rows, read from the embedding shards on demand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.errors import SchemaError
from saladpipe.data_schemas.io import read_table
from saladpipe.models.embedding import read_embeddings


class EmbeddingLookup:
    """Maps pool rows to (shard, offset) once; each call reads only the shards it needs.

    Selection asks for vectors a few times per round (candidates, a chunk of picks),
    so the pool's embeddings never have to be in memory at once.
    """

    def __init__(self, embedding_shards: list[Path], pool_text_ids: pa.Array) -> None:
        ids = [
            read_table(p, tables.embeddings_schema(1), columns=["text_id"]).column("text_id")
            for p in embedding_shards
        ]
        sizes = np.array([len(c) for c in ids], dtype=np.int64)
        chunks = [chunk for column in ids for chunk in column.chunks]
        position = pc.index_in(pool_text_ids, value_set=pa.chunked_array(chunks).combine_chunks())
        if position.null_count:
            missing = pool_text_ids.filter(pc.is_null(position))[0].as_py()
            raise SchemaError(f"no embedding for pool text {missing!r}")
        global_row = position.to_numpy(zero_copy_only=False).astype(np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(sizes)])
        self._shard = np.searchsorted(self._offsets, global_row, side="right") - 1
        self._row = global_row - self._offsets[self._shard]
        self._paths = embedding_shards

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        out: np.ndarray | None = None
        for shard in np.unique(self._shard[rows]):
            here = np.flatnonzero(self._shard[rows] == shard)
            matrix = read_embeddings(self._paths[int(shard)])[1]
            if out is None:
                out = np.zeros((rows.size, matrix.shape[1]), dtype=np.float32)
            out[here] = matrix[self._row[rows[here]]]
        return out if out is not None else np.zeros((0, 0), dtype=np.float32)
