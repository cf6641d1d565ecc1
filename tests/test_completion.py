"""Completion records: what makes a finished task count as finished, and what does not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from saladpipe.data_schemas import RunLayout, parse_config
from saladpipe.data_schemas.config import RunConfig
from saladpipe.data_schemas.io import write_text
from saladpipe.flows.completion import CompletionStore, paths_in, task_key
from saladpipe.pipeline.ledger import same_attempt


def _stage(config: RunConfig, source: Path, out_path: Path) -> Path:
    """A stand-in task body: its source is part of the key."""
    out_path.write_text(source.read_text().upper())
    return out_path


def _config(root: Path, extra: str = "") -> RunConfig:
    text = f'[run]\noutput_dir = "{root}"\n[corpus]\nbuiltin = "wordnet-domains"\n{extra}'
    return parse_config(text, "test", root)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    source = tmp_path / "in.txt"
    source.write_text("hello")
    return {"source": source, "out": tmp_path / "out.txt"}


def test_key_follows_input_files_but_not_outputs(tmp_path: Path, files: dict[str, Path]) -> None:
    config = _config(tmp_path)
    args = {"config": config, "source": files["source"], "out_path": files["out"]}
    before = task_key("stage", _stage, args)
    _stage(config, files["source"], files["out"])  # the output appears: same key
    assert task_key("stage", _stage, args) == before
    files["source"].write_text("changed input")
    os.utime(files["source"], ns=(1, 1))
    assert task_key("stage", _stage, args) != before
    assert task_key("other-stage", _stage, args) != task_key("stage", _stage, args)


def test_where_tasks_run_is_not_what_they_compute(tmp_path: Path, files: dict[str, Path]) -> None:
    plain, dask = _config(tmp_path), _config(tmp_path, '[prefect]\ntask_runner = "dask"\n')
    changed = _config(tmp_path, "[select]\ngamma = 3.0\n")
    args = {"source": files["source"], "out_path": files["out"]}
    key = task_key("stage", _stage, {"config": plain, **args})
    assert task_key("stage", _stage, {"config": dask, **args}) == key
    assert task_key("stage", _stage, {"config": changed, **args}) != key
    layout = RunLayout(tmp_path)
    write_text(plain.model_dump_json(indent=2), layout.config_copy)
    assert same_attempt(layout, dask) and not same_attempt(layout, changed)


def test_a_record_holds_while_its_files_are_unchanged(
    tmp_path: Path, files: dict[str, Path]
) -> None:
    store = CompletionStore(RunLayout(tmp_path))
    result = _stage(_config(tmp_path), files["source"], files["out"])
    store.record("stage", "k", (result, 3), paths_in((result, 3)))
    found = store.lookup("stage", "k")
    assert found is not None and found.result == (files["out"], 3)
    assert store.lookup("stage", "other-key") is None
    files["out"].write_text("HELLO, edited")
    assert store.lookup("stage", "k") is None
    store.record("stage", "k", result, [result])
    files["out"].unlink()
    assert store.lookup("stage", "k") is None


def test_a_torn_record_is_no_record(tmp_path: Path) -> None:
    store = CompletionStore(RunLayout(tmp_path))
    path = store.root / "stage" / "k.pkl"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x80\x04")  # cut short
    assert store.lookup("stage", "k") is None
