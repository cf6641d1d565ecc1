"""Two real rounds through the CLI: a newer student, a fresh budget, nothing picked twice."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from safetensors.numpy import load_file, save_file

from saladpipe.cli import main
from saladpipe.cli.preflight import Folder, choose_round
from saladpipe.data_schemas import tables
from saladpipe.data_schemas.config import RunConfig, parse_config
from saladpipe.data_schemas.layout import RunLayout, cache_dir
from saladpipe.data_schemas.manifest import Manifest
from saladpipe.models.placeholder import ensure_placeholder_models
from saladpipe.pipeline import ledger
from saladpipe.pipeline.ingest import corpus_texts
from saladpipe.shards.verify import verify_run
from tests.factories import small_wordnet_corpus, write_config, write_jsonl

pytestmark = pytest.mark.e2e

SMALL: dict[str, dict[str, Any]] = {
    "cluster": {"k": 3, "iterations": 5},
    "probe": {"per_cluster": 2, "shard_rows": 8},
    "select": {"strategy": "salad", "budget_texts": 4, "salad": {"gamma": 5.0}},
}


def _newer_student(run_dir: Path, out: Path) -> Path:
    """The placeholder student of this run with its adapter weights moved: a new checkpoint."""
    shards = sorted((run_dir / "corpus").glob("part-*.parquet"))
    dirs = ensure_placeholder_models(cache_dir() / "models", corpus_texts(shards), 0)
    shutil.copytree(dirs["placeholder-student"], out)
    adapter = out / "adapter.safetensors"
    weights = load_file(adapter)
    rng = np.random.default_rng(1)
    save_file(
        {k: (v + 0.5 * rng.standard_normal(v.shape)).astype(v.dtype) for k, v in weights.items()},
        adapter,
    )
    return out


@pytest.fixture(scope="module")
def two_rounds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("rounds")
    corpus = small_wordnet_corpus(per_domain=8)
    keep = {"noun.animal", "noun.food", "verb.motion"}
    path = write_jsonl(tmp / "corpus.jsonl", [r for r in corpus.to_pylist() if r["domain"] in keep])
    run_dir = tmp / "run"
    first = write_config(tmp / "round0.toml", path, run_dir, **SMALL)
    code0 = main(["run", str(first)])
    student = _newer_student(run_dir, tmp / "student-v2")
    later: dict[str, dict[str, Any]] = {
        **SMALL,
        "select": {"strategy": "diverse", "budget_texts": 5, "near_duplicate_threshold": 0.95},
        # Tiny sizes: every clip its own row group and shard, so rotation goes end to end.
        "output": {"shard_rows": 8, "max_shard_mb": 1e-5, "row_group_mb": 1e-5},
    }
    second = write_config(tmp / "round1.toml", path, run_dir, **later)
    with second.open("a", encoding="utf-8") as fh:
        fh.write(f'[models.student]\nsource = "{student}"\n')
    code1 = main(["run", str(second), "--next-round"])
    return {"dir": run_dir, "codes": (code0, code1), "tmp": tmp, "corpus": path}


def _selection(run_dir: Path, r: int) -> list[str]:
    return tables.strings(
        pq.read_table(run_dir / "selection" / f"round-{r:03d}.parquet").column("text_id")
    )


def test_second_round_rescores_with_the_newer_student_and_never_repicks(
    two_rounds: dict[str, Any],
) -> None:
    run_dir = two_rounds["dir"]
    assert two_rounds["codes"] == (0, 0)
    records = ledger.finished_rounds(RunLayout(run_dir))
    assert [r.round for r in records] == [0, 1]
    assert records[0].student_id != records[1].student_id
    assert records[1].strategy == "diverse" and records[1].budget_limit == 5
    scores0 = pq.read_table(run_dir / "scores" / "part-00000.parquet")
    scores1 = pq.read_table(run_dir / "scores" / "part-r001-00000.parquet")
    assert set(scores1.column("student_id").to_pylist()) == {records[1].student_id}
    assert scores0.column("text_id").equals(scores1.column("text_id"))  # same probes
    assert scores0.column("misalignment").to_pylist() != scores1.column("misalignment").to_pylist()
    first, second = _selection(run_dir, 0), _selection(run_dir, 1)
    assert len(first) == 4 and len(second) == 5
    assert not set(first) & set(second)
    rows = ledger.read_ledger(RunLayout(run_dir))
    assert sorted(tables.strings(rows.column("text_id"))) == sorted(first + second)
    assert set(rows.column("status").to_pylist()) <= {"synthesized", "tts_failed"}


def test_manifest_lists_every_round_and_the_folder_verifies(two_rounds: dict[str, Any]) -> None:
    run_dir = two_rounds["dir"]
    manifest = Manifest.read(run_dir / "manifest.json")
    assert manifest.counts["round"] == 1
    assert manifest.counts["ledger_texts"] == 4 and manifest.counts["selected"] == 5
    paths = [s.path for s in manifest.shards]
    assert "shards/part-00000.parquet" in paths
    later_paths = [p for p in paths if p.startswith("shards/part-r001-00000")]
    rotated = ["shards/part-r001-00000.parquet"]
    rotated += [f"shards/part-r001-00000-{i:03d}.parquet" for i in range(1, len(later_paths))]
    assert later_paths == rotated and len(rotated) == manifest.counts["synthesized"] > 1
    assert verify_run(run_dir) == []
    later = pq.read_table([run_dir / p for p in later_paths])
    assert later.num_rows == manifest.counts["synthesized"]
    assert set(later.column("selection_round").to_pylist()) == {1}
    assert set(later.column("strategy").to_pylist()) == {"diverse"}


def test_explain_says_why_for_each_round(
    two_rounds: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = two_rounds["dir"]
    first = _selection(run_dir, 0)[0]
    assert main(["explain", first, "--run-dir", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "round 0 (strategy salad" in out and "SELECTED at rank" in out
    assert "round 1 (strategy diverse" in out and "not eligible: picked in round 0" in out
    assert main(["explain", "no-such-text", "--run-dir", str(run_dir)]) == 1
    assert "not in the corpus" in capsys.readouterr().err


def test_next_round_refuses_a_changed_pool_and_misuse(
    two_rounds: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    tmp, corpus, run_dir = two_rounds["tmp"], two_rounds["corpus"], two_rounds["dir"]
    changed = write_config(
        tmp / "changed.toml", corpus, run_dir, **{**SMALL, "cluster": {"k": 4, "iterations": 5}}
    )
    assert main(["run", str(changed), "--next-round"]) == 2
    assert "cluster.k: 4 differs from round 0's 3" in capsys.readouterr().err
    same = write_config(tmp / "same.toml", corpus, run_dir, **SMALL)
    assert main(["run", str(same), "--next-round", "--overwrite"]) == 2
    assert main(["run", str(same)]) == 2
    assert "--next-round" in capsys.readouterr().err
    empty = write_config(tmp / "empty.toml", corpus, tmp / "fresh", **SMALL)
    assert main(["run", str(empty), "--next-round"]) == 2
    assert "no finished round" in capsys.readouterr().err


def _config(layout: RunLayout) -> RunConfig:
    text = f'[run]\noutput_dir = "{layout.root}"\n[corpus]\nbuiltin = "wordnet-domains"\n'
    return parse_config(text, "test", layout.root)


def test_overwrite_starts_a_new_ledger_and_keeps_the_prefect_database(tmp_path: Path) -> None:
    layout = RunLayout(tmp_path / "run")
    layout.ledger_dir.mkdir(parents=True)
    layout.ledger_round(0).write_text("{}")
    (layout.state / "prefect").mkdir()
    (layout.root / "manifest.json").write_text("{}")
    assert choose_round(layout, _config(layout), Folder.OVERWRITE) == (0, False)
    assert not layout.ledger_dir.exists() and (layout.state / "prefect").is_dir()
    assert not (layout.root / "manifest.json").exists()
