"""examples/mix.toml as shipped, on a finished run: synthetic speech from its shards,
the natural-speech stand-in, and the pool texts the run did not select."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from saladpipe.cli import main
from saladpipe.data_schemas import tables
from saladpipe.data_schemas.layout import RunLayout
from saladpipe.pipeline.ledger import read_ledger
from saladpipe.training import standin
from saladpipe.training.recipe import REDUCED_RECIPE
from tests.factories import E2ERun, tone_run
from tests.mix_factories import write_mix_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mix.toml"


def test_the_example_mix_builds_from_a_finished_run(
    e2e_run: E2ERun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "examples").mkdir()
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "quickstart").symlink_to(e2e_run.run_dir)
    # The session's run made 18 clips and the reduced stand-in has 12, not the default's
    # 389 and 600: the mix asks for what they hold; everything else is the example's.
    text = re.sub(r"^total = [0-9.]+", "total = 0.01", EXAMPLE.read_text(), flags=re.M)
    (tmp_path / "examples" / "mix.toml").write_text(text)
    monkeypatch.setattr(standin, "DEFAULT_RECIPE", REDUCED_RECIPE)
    monkeypatch.chdir(tmp_path)
    assert main(["mix", "examples/mix.toml"]) == 0

    out = tmp_path / "mixes" / "stage2-thirds"
    summary = json.loads((out / "mix.json").read_text())
    assert [(s["name"], s["kind"]) for s in summary["sources"]] == [
        ("synthetic", "speech"),
        ("natural", "speech"),
        ("text", "text"),
    ]
    rows = pq.read_table(out / "rows.parquet").to_pylist()
    ledger = read_ledger(RunLayout(e2e_run.run_dir))
    selected = set(tables.strings(ledger.column("text_id")))
    by_source = {
        s["name"]: {r["item_id"] for r in rows if r["source"] == s["name"]}
        for s in summary["sources"]
    }
    assert by_source["synthetic"] <= selected
    assert by_source["text"] and not by_source["text"] & selected
    corpus = pq.read_table(e2e_run.run_dir / "corpus").column("text_id").to_pylist()
    assert by_source["text"] <= set(corpus)
    assert all(s["taken"] >= s["requested"] - 1e-9 for s in summary["sources"])
    assert main(["verify", str(out)]) == 0


def test_a_run_folder_offers_only_the_rows_its_ledger_accounts_for(
    e2e_run: E2ERun, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(e2e_run.run_dir, run, ignore=shutil.ignore_patterns("prefect"))
    tones, _ = tone_run(tmp_path / "tones", n=5)
    stray = next((tones / "shards").glob("*.parquet"))
    shutil.copy(stray, run / "shards" / "part-99999.parquet")
    config = write_mix_config(
        tmp_path / "mix.toml",
        {"unit": "rows", "total": 1000, "allow_shortfall": True},
        [{"name": "synthetic", "kind": "shards", "path": run}],
    )
    assert main(["mix", str(config), "--output-dir", str(tmp_path / "out")]) == 0
    (source,) = json.loads((tmp_path / "out" / "mix.json").read_text())["sources"]
    assert source["skipped"] == {"not_in_ledger": 5}
    status = read_ledger(RunLayout(run)).column("status").to_pylist()
    assert source["rows"] == status.count("synthesized")
