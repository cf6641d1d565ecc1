"""The score stage: one scores shard per probe shard, every probe in it, keyed by its models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from saladpipe.data_schemas import tables
from saladpipe.data_schemas.config import ModelSpec, ModelsSection
from saladpipe.data_schemas.io import read_table, write_table
from saladpipe.models.distillation import DistillationScorer
from saladpipe.models.loading import ScorerSpec
from saladpipe.pipeline import score
from saladpipe.tts.audio import encode
from tests.model_factories import load_pair, noise, placeholder_dirs

PROBES = [
    ("p-ok", "Sentence 3 is about", "rivers and the words"),
    ("p-long", "Sentence 4 is", "about music and the words that usually follow music " * 4),
    ("p-no-clip", "Sentence 5 is", "about trains"),
    ("p-broken-clip", "Sentence 6 is", "about stars"),
    ("p-one-word", "Sentence", ""),
]


@pytest.fixture(scope="module")
def scorer(tmp_path_factory: pytest.TempPathFactory) -> DistillationScorer:
    pair = load_pair(placeholder_dirs(tmp_path_factory.mktemp("placeholders")))
    return DistillationScorer(*pair, batch_tokens=1024, batch_size=8, max_tokens=24)


def _write_inputs(
    folder: Path, continuation_of_ok: str = "rivers and the words"
) -> tuple[Path, Path]:
    rows = [(t, p, continuation_of_ok if t == "p-ok" else c) for t, p, c in PROBES]
    probes = pa.table(
        {
            "text_id": [t for t, _, _ in rows],
            "cluster": pa.array([0, 0, 1, 1, 2], pa.int32()),
            "text": [f"{p} {c}".strip() for _, p, c in rows],
            "prefix_text": [p for _, p, _ in rows],
            "continuation_text": [c for _, _, c in rows],
        }
    )
    clip_ids = ["p-ok", "p-long", "p-broken-clip", "p-one-word"]
    audio: list[dict[str, Any]] = [
        {"bytes": encode(noise(0.6, seed=i), 16000, "flac"), "path": f"{t}.flac"}
        for i, t in enumerate(clip_ids)
    ]
    audio[2] = {"bytes": b"not audio at all", "path": "broken.flac"}
    clips = _with_other_columns(
        pa.table(
            {
                "text_id": clip_ids,
                "audio": audio,
                "sampling_rate": pa.array([16000] * 4, pa.int32()),
            }
        ),
        tables.CLIPS,
    )
    return (
        write_table(probes, folder / "probes-00000.parquet", tables.PROBES),
        write_table(clips, folder / "clips-00000.parquet", tables.CLIPS),
    )


def _with_other_columns(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Fill the columns scoring does not read (TTS provenance) with plain values."""
    for field in schema:
        if field.name in table.column_names:
            continue
        if field.nullable:
            column = pa.nulls(table.num_rows, field.type)
        elif pa.types.is_string(field.type):
            column = pa.array(["x"] * table.num_rows, field.type)
        else:
            column = pa.array([0] * table.num_rows).cast(field.type)
        table = table.append_column(field.name, column)
    return table


def test_every_probe_gets_a_row_with_its_outcome(
    scorer: DistillationScorer, tmp_path: Path
) -> None:
    probes, clips = _write_inputs(tmp_path)
    out = tmp_path / "scores.parquet"
    score.score_shard(probes, clips, out, scorer)
    rows = {r["text_id"]: r for r in read_table(out, tables.SCORES).to_pylist()}
    assert [rows[t]["status"] for t, _, _ in PROBES] == [
        "ok",
        "ok",
        "no_audio",
        "invalid_audio",
        "empty_continuation",
    ]
    ok, long = rows["p-ok"], rows["p-long"]
    assert not ok["truncated"] and long["truncated"]
    for row in (ok, long):
        assert row["misalignment"] > 0 and row["forgetting"] == 0.0  # LM copied from the teacher
        assert len(row["token_ids"]) == len(row["token_kl"]) == row["n_tokens"] > 0
        assert row["misalignment"] == pytest.approx(sum(row["token_kl"]) / row["n_tokens"])
        assert row["teacher_id"] == scorer.teacher_id and row["student_id"] == scorer.student_id
    for text_id in ("p-no-clip", "p-broken-clip", "p-one-word"):
        assert rows[text_id]["misalignment"] is None and rows[text_id]["token_kl"] is None


def test_a_score_stage_is_keyed_by_the_weights_it_loads_and_where_it_runs(
    scorer: DistillationScorer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The scorer spec a score stage is keyed by: the ids of the weights (found without
    loading them) and the settings as resolved on this machine (`auto` is a device)."""
    dirs = tuple(sorted(placeholder_dirs(tmp_path_factory.mktemp("placeholders")).items()))
    models = ModelsSection(
        teacher=ModelSpec(source="builtin:placeholder-teacher"),
        student=ModelSpec(source="builtin:placeholder-student"),
    )
    spec = ScorerSpec.of(models, dirs)
    assert spec.model_ids == (scorer.teacher_id, scorer.student_id)
    assert (
        dict(spec.settings)["device"] == "cpu" and dict(spec.settings)["dtype"] == "torch.float32"
    )
    assert ScorerSpec.of(models.model_copy(update={"forgetting": False}), dirs) != spec
    built = spec.build()
    assert (built.teacher_id, built.student_id) == spec.model_ids
