"""Table contracts: conforming, required columns, schema versions, atomic writes."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from saladpipe.data_schemas import SchemaError, tables
from saladpipe.data_schemas.io import read_table, write_table


def _corpus(**overrides: list[object]) -> pa.Table:
    columns: dict[str, list[object]] = {
        "text_id": ["a"],
        "text": ["hello"],
        "domain": [None],
        "source": ["f:1"],
    }
    columns.update(overrides)
    return pa.table(columns)


def test_write_then_read_round_trips_with_version(tmp_path: Path) -> None:
    path = write_table(_corpus(), tmp_path / "c.parquet", tables.CORPUS)
    assert read_table(path, tables.CORPUS).column("text").to_pylist() == ["hello"]
    assert pq.read_schema(path).metadata[tables.VERSION_KEY] == b"1"
    assert [p.name for p in tmp_path.iterdir()] == ["c.parquet"]  # no temporary left behind


def test_missing_column_and_null_in_required_column_are_named(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="missing column 'source'"):
        write_table(_corpus().drop_columns(["source"]), tmp_path / "c.parquet", tables.CORPUS)
    with pytest.raises(SchemaError, match="column 'text' has null values"):
        write_table(_corpus(text=[None]), tmp_path / "c.parquet", tables.CORPUS)
    assert not (tmp_path / "c.parquet").exists()


def test_shard_schema_is_nullable_for_datasets_but_required_columns_are_enforced() -> None:
    assert all(field.nullable for field in tables.SHARD)
    row = {name: [None] for name in tables.SHARD.names}
    with pytest.raises(SchemaError, match="column 'text_id' has null values"):
        tables.conform(pa.table(row, schema=tables.SHARD), tables.SHARD)


def test_other_schema_versions_and_foreign_files_are_refused(tmp_path: Path) -> None:
    table = tables.conform(_corpus(), tables.CORPUS)
    newer = table.replace_schema_metadata({tables.VERSION_KEY: b"99"})
    pq.write_table(newer, tmp_path / "new.parquet")
    with pytest.raises(SchemaError, match="schema version 99, this saladpipe reads 1"):
        read_table(tmp_path / "new.parquet", tables.CORPUS)
    pq.write_table(_corpus(), tmp_path / "foreign.parquet")
    with pytest.raises(SchemaError, match="not written by saladpipe"):
        read_table(tmp_path / "foreign.parquet", tables.CORPUS)
