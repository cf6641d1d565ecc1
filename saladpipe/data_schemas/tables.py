"""Arrow schemas of every table the pipeline reads or writes.

One schema per table, named after what the table holds. The schema version is
stored in each file's metadata so that a reader can refuse a file it does not
understand with a message naming the version.
"""

from __future__ import annotations

import json
from typing import Any, cast

import pyarrow as pa

from saladpipe.data_schemas.errors import SchemaError

SCHEMA_VERSION = 1
VERSION_KEY = b"saladpipe.schema_version"
TABLE_KEY = b"saladpipe.table"
REQUIRED_KEY = b"saladpipe.required"

AUDIO_TYPE = pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])


def _schema(
    name: str, fields: list[pa.Field], extra: dict[bytes, bytes] | None = None
) -> pa.Schema:
    metadata: dict[bytes | str, bytes | str] = {
        VERSION_KEY: str(SCHEMA_VERSION).encode(),
        TABLE_KEY: name.encode(),
    }
    metadata.update((extra or {}).items())
    return pa.schema(fields, metadata=metadata)


CORPUS = _schema(
    "corpus",
    [
        pa.field("text_id", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("domain", pa.string()),
        pa.field("source", pa.string(), nullable=False),
    ],
)

# Where each text's continuation starts, for a corpus ingested with split columns
# (probe.split = "columns"); one shard beside each corpus shard.
CORPUS_SPLITS = _schema(
    "corpus_splits",
    [
        pa.field("text_id", pa.string(), nullable=False),
        pa.field("prefix_chars", pa.int32(), nullable=False),
    ],
)

QUARANTINE = _schema(
    "quarantine",
    [
        pa.field("stage", pa.string(), nullable=False),
        pa.field("text_id", pa.string()),
        pa.field("source", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string()),
        pa.field("text", pa.string()),
    ],
)

ASSIGNMENTS = _schema(
    "assignments",
    [
        pa.field("text_id", pa.string(), nullable=False),
        pa.field("cluster", pa.int32(), nullable=False),
        pa.field("distance", pa.float32(), nullable=False),
    ],
)

PROBES = _schema(
    "probes",
    [
        pa.field("text_id", pa.string(), nullable=False),
        pa.field("cluster", pa.int32(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("prefix_text", pa.string(), nullable=False),
        pa.field("continuation_text", pa.string(), nullable=False),
    ],
)

# A clip as every table that holds one stores it, and the voice that spoke it.
_AUDIO: list[pa.Field] = [
    pa.field("audio", AUDIO_TYPE, nullable=False),
    pa.field("sampling_rate", pa.int32(), nullable=False),
    pa.field("duration_s", pa.float32(), nullable=False),
]
_VOICE: list[pa.Field] = [
    pa.field("tts_engine", pa.string(), nullable=False),
    pa.field("tts_voice", pa.string(), nullable=False),
    pa.field("tts_license", pa.string(), nullable=False),
]
# The text as the engine read it: numbers, abbreviations and symbols spelled out.
_NORMALIZED_TEXT = pa.field("normalized_text", pa.string(), nullable=False)
# Character error rate of an ASR transcript of the clip; null without tts.asr.
_ASR_CER = pa.field("asr_cer", pa.float32())

CLIPS = _schema(
    "clips",
    [
        pa.field("text_id", pa.string(), nullable=False),
        pa.field("spoken_text", pa.string(), nullable=False),
        _NORMALIZED_TEXT,
        *_AUDIO,
        *_VOICE,
        _ASR_CER,
    ],
)

# One row per probe. misalignment and forgetting are means over the scored continuation
# tokens (n_tokens; `truncated` when the continuation was cut to fit); the per-token
# values behind them, with the token ids, are kept for audit. Null scores: see status.
SCORES = _schema(
    "scores",
    [
        pa.field("text_id", pa.string(), nullable=False),
        pa.field("cluster", pa.int32(), nullable=False),
        pa.field("misalignment", pa.float64()),
        pa.field("forgetting", pa.float64()),
        pa.field("n_tokens", pa.int32(), nullable=False),
        pa.field("truncated", pa.bool_(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("teacher_id", pa.string(), nullable=False),
        pa.field("student_id", pa.string(), nullable=False),
        pa.field("token_ids", pa.list_(pa.int32())),
        pa.field("token_kl", pa.list_(pa.float32())),
        pa.field("token_forgetting", pa.list_(pa.float32())),
    ],
)

# Per-text gap estimate for every text of the pool (kNN propagation from scored probes);
# one shard per assignments shard. Written by scoring, read by selection strategies.
# A scored probe carries its own misalignment with gap_spread 0 and n_neighbors 0.
GAP_ESTIMATES = _schema(
    "gap_estimates",
    [
        pa.field("text_id", pa.string(), nullable=False),
        pa.field("cluster", pa.int32(), nullable=False),
        pa.field("gap", pa.float64(), nullable=False),
        pa.field("gap_spread", pa.float64(), nullable=False),
        pa.field("n_neighbors", pa.int32(), nullable=False),
    ],
)

# One row per cluster and round: pool_count/pool_share over the whole pool; eligible_count
# after the ledger and exclusions; gap_used is the gap P(c) was computed from (gap_mean,
# filled and explored); probability is P(c) (for top_k/diverse: the cluster's share of the
# picks); excluded_reason is set when the whole cluster was excluded. cer_mean is the mean
# ASR character error rate of the cluster's measured texts (probe clips, a CER table) and
# cer_measured their number; both null in a run that measured none.
CLUSTER_STATS = _schema(
    "cluster_stats",
    [
        pa.field("cluster", pa.int32(), nullable=False),
        pa.field("pool_count", pa.int64(), nullable=False),
        pa.field("pool_share", pa.float64(), nullable=False),
        pa.field("probe_count", pa.int32(), nullable=False),
        pa.field("gap_mean", pa.float64()),
        pa.field("gap_std", pa.float64()),
        pa.field("probability", pa.float64(), nullable=False),
        pa.field("eligible_count", pa.int64(), nullable=False),
        pa.field("gap_used", pa.float64(), nullable=False),
        pa.field("selected", pa.int64(), nullable=False),
        pa.field("excluded_reason", pa.string()),
        pa.field("cer_mean", pa.float64()),
        pa.field("cer_measured", pa.int64()),
    ],
)

# The ledger: every text selected in any round of a run folder and what became of it
# (status `synthesized` with its shard and duration, or `tts_failed`). Never re-picked.
LEDGER = _schema(
    "ledger",
    [
        pa.field("text_id", pa.string(), nullable=False),
        pa.field("selection_round", pa.int32(), nullable=False),
        pa.field("cluster", pa.int32(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("shard", pa.string()),
        pa.field("duration_s", pa.float64()),
        pa.field("n_chars", pa.int32(), nullable=False),
    ],
)

_PROVENANCE: list[pa.Field] = [
    pa.field("domain", pa.string()),
    pa.field("cluster", pa.int32(), nullable=False),
    pa.field("cluster_gap", pa.float64(), nullable=False),
    pa.field("gap_score", pa.float64(), nullable=False),
    pa.field("selection_round", pa.int32(), nullable=False),
    pa.field("strategy", pa.string(), nullable=False),
    pa.field("probability", pa.float64(), nullable=False),
    pa.field("rank", pa.int64(), nullable=False),
]

SELECTION = _schema(
    "selection",
    [
        pa.field("text_id", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        *_PROVENANCE,
    ],
)

_HF_FEATURES = {
    "text_id": {"dtype": "string", "_type": "Value"},
    "text": {"dtype": "string", "_type": "Value"},
    "audio": {"_type": "Audio"},
    "sampling_rate": {"dtype": "int32", "_type": "Value"},
    "duration_s": {"dtype": "float32", "_type": "Value"},
    "domain": {"dtype": "string", "_type": "Value"},
    "cluster": {"dtype": "int32", "_type": "Value"},
    "cluster_gap": {"dtype": "float64", "_type": "Value"},
    "gap_score": {"dtype": "float64", "_type": "Value"},
    "selection_round": {"dtype": "int32", "_type": "Value"},
    "strategy": {"dtype": "string", "_type": "Value"},
    "probability": {"dtype": "float64", "_type": "Value"},
    "rank": {"dtype": "int64", "_type": "Value"},
    "tts_engine": {"dtype": "string", "_type": "Value"},
    "tts_voice": {"dtype": "string", "_type": "Value"},
    "tts_license": {"dtype": "string", "_type": "Value"},
    "normalized_text": {"dtype": "string", "_type": "Value"},
    "asr_cer": {"dtype": "float32", "_type": "Value"},
}


def _hf_compatible(field: pa.Field) -> pa.Field:
    """Hugging Face `datasets` ignores its features metadata for non-nullable columns, so the
    shard declares every column nullable and marks the required ones in field metadata."""
    if field.nullable:
        return field
    return field.with_nullable(True).with_metadata({REQUIRED_KEY: b"true"})


SHARD = _schema(
    "shard",
    [
        _hf_compatible(f)
        for f in [
            pa.field("text_id", pa.string(), nullable=False),
            pa.field("text", pa.string(), nullable=False),
            *_AUDIO,
            *_PROVENANCE,
            *_VOICE,
            _NORMALIZED_TEXT,
            _ASR_CER,
        ]
    ],
    # What Hugging Face `datasets` reads to type the audio column as Audio.
    {b"huggingface": json.dumps({"info": {"features": _HF_FEATURES}}).encode()},
)


# The rows a mix source offers: an item, where to find it, its text, its (speech)
# duration, and what the mix report groups it by: domain or cluster, voice, TTS engine.
_MIX_ITEM: list[pa.Field] = [
    pa.field("item_id", pa.string(), nullable=False),
    pa.field("locator", pa.string(), nullable=False),
    pa.field("text", pa.string(), nullable=False),
    pa.field("duration_s", pa.float64()),
    pa.field("group", pa.string()),
    pa.field("voice", pa.string()),
    pa.field("engine", pa.string()),
]
MIX_CANDIDATES = _schema("mix_candidates", _MIX_ITEM)
# Where a mix row came from: the source's name, its format, and speech or text.
_MIX_ORIGIN: list[pa.Field] = [
    pa.field("source", pa.string(), nullable=False),
    pa.field("format", pa.string(), nullable=False),
    pa.field("kind", pa.string(), nullable=False),
]
# Rows of a training mix: which source each came from and where to find it.
MIX_ROWS = _schema("mix_rows", [*_MIX_ORIGIN, *_MIX_ITEM])
# A materialised mix: its rows with the audio itself (null for text rows), typed for
# Hugging Face `datasets` as the run shards are.
_MIX_HF_FEATURES = {
    **{f.name: {"dtype": "string", "_type": "Value"} for f in [*_MIX_ORIGIN, *_MIX_ITEM]},
    "duration_s": {"dtype": "float64", "_type": "Value"},
    "audio": {"_type": "Audio"},
    "sampling_rate": {"dtype": "int32", "_type": "Value"},
}
MIX_SHARD = _schema(
    "mix_shard",
    [
        _hf_compatible(f)
        for f in [
            *_MIX_ORIGIN,
            *_MIX_ITEM,
            pa.field("audio", AUDIO_TYPE),
            pa.field("sampling_rate", pa.int32()),
        ]
    ],
    {b"huggingface": json.dumps({"info": {"features": _MIX_HF_FEATURES}}).encode()},
)


def embeddings_schema(dim: int) -> pa.Schema:
    """Embeddings as fixed-size float32 lists; the width depends on the model."""
    return _schema(
        "embeddings",
        [
            pa.field("text_id", pa.string(), nullable=False),
            pa.field("embedding", pa.list_(pa.float32(), dim), nullable=False),
        ],
    )


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Return `table` with exactly `schema`'s columns, order, types and metadata.

    Missing columns or values that cannot be cast are a SchemaError naming the column.
    """
    columns = []
    for field in schema:
        if field.name not in table.column_names:
            raise SchemaError(f"table {_name(schema)}: missing column {field.name!r}")
        column = table.column(field.name)
        if not column.type.equals(field.type):
            try:
                column = column.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise SchemaError(
                    f"table {_name(schema)}: column {field.name!r} has type {column.type}, "
                    f"expected {field.type}: {exc}"
                ) from None
        required = not field.nullable or (field.metadata or {}).get(REQUIRED_KEY) == b"true"
        if required and column.null_count:
            raise SchemaError(f"table {_name(schema)}: column {field.name!r} has null values")
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema)


# Python values of a column that holds no null: a required column of a table written
# through `conform`, which refuses a null there. pyarrow-stubs type `to_pylist` as
# `list[T | None]` with T unknown for a table's column; these state the column's type.


def strings(column: pa.Array[Any] | pa.ChunkedArray[Any]) -> list[str]:
    """The values of a string column without nulls."""
    return cast("list[str]", column.to_pylist())


def ints(column: pa.Array[Any] | pa.ChunkedArray[Any]) -> list[int]:
    """The values of an integer column without nulls."""
    return cast("list[int]", column.to_pylist())


def floats(column: pa.Array[Any] | pa.ChunkedArray[Any]) -> list[float]:
    """The values of a floating-point column without nulls."""
    return cast("list[float]", column.to_pylist())


def check_version(schema: pa.Schema, origin: str) -> None:
    """Refuse a file written by a schema version this code does not read."""
    meta = schema.metadata or {}
    raw = meta.get(VERSION_KEY)
    if raw is None:
        raise SchemaError(f"{origin}: not written by saladpipe (no schema version in its metadata)")
    if int(raw) != SCHEMA_VERSION:
        raise SchemaError(
            f"{origin}: written with schema version {int(raw)}, "
            f"this saladpipe reads {SCHEMA_VERSION}"
        )


def _name(schema: pa.Schema) -> str:
    return (schema.metadata or {}).get(TABLE_KEY, b"?").decode()
