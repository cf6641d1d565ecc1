"""Completion records: what makes a finished task count as finished, and what does not."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from saladpipe.data_schemas import RunLayout, parse_config
from saladpipe.data_schemas.config import RunConfig
from saladpipe.data_schemas.digests import DigestCache
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


@pytest.fixture
def digests(tmp_path: Path) -> DigestCache:
    return DigestCache(tmp_path / "digests")


def test_key_follows_input_bytes_not_their_mtime_and_not_outputs(
    tmp_path: Path, files: dict[str, Path], digests: DigestCache
) -> None:
    config = _config(tmp_path)
    args = {"config": config, "source": files["source"], "out_path": files["out"]}
    before = task_key("stage", _stage, args, digests, ("out_path",))
    _stage(config, files["source"], files["out"])  # the output appears: same key
    assert task_key("stage", _stage, args, digests, ("out_path",)) == before
    # Rewritten with the same bytes (a task redone after a kill): same key.
    files["source"].write_text("hello")
    os.utime(files["source"], ns=(1, 1))
    assert task_key("stage", _stage, args, digests, ("out_path",)) == before
    # Other bytes: another key.
    files["source"].write_text("HELLO")
    os.utime(files["source"], ns=(2, 2))
    assert task_key("stage", _stage, args, digests, ("out_path",)) != before
    assert task_key("other-stage", _stage, args, digests) != before


def test_scratch_inputs_are_keyed_by_path_alone(
    tmp_path: Path, files: dict[str, Path], digests: DigestCache
) -> None:
    """A scratch input is deleted once its consumer has finished; the consumer's key must
    not change when it is gone, or a finished run would redo it."""
    args = {"source": files["source"], "out_path": files["out"]}
    key = task_key("stage", _stage, args, digests, by_path=("source",))
    files["source"].unlink()
    assert task_key("stage", _stage, args, digests, by_path=("source",)) == key
    assert task_key("stage", _stage, args, digests, ("out_path",)) != key


def test_where_tasks_run_is_not_what_they_compute(
    tmp_path: Path, files: dict[str, Path], digests: DigestCache
) -> None:
    plain, dask = _config(tmp_path), _config(tmp_path, '[prefect]\ntask_runner = "dask"\n')
    changed = _config(tmp_path, "[select.salad]\ngamma = 3.0\n")
    args = {"source": files["source"], "out_path": files["out"]}
    key = task_key("stage", _stage, {"config": plain, **args}, digests, ("out_path",))
    assert task_key("stage", _stage, {"config": dask, **args}, digests, ("out_path",)) == key
    assert task_key("stage", _stage, {"config": changed, **args}, digests, ("out_path",)) != key
    layout = RunLayout(tmp_path)
    write_text(plain.model_dump_json(indent=2), layout.config_copy)
    assert same_attempt(layout, dask) and not same_attempt(layout, changed)


def test_a_record_holds_while_its_files_keep_their_bytes(
    tmp_path: Path, files: dict[str, Path]
) -> None:
    store = CompletionStore(RunLayout(tmp_path))
    result = _stage(_config(tmp_path), files["source"], files["out"])
    store.record("stage", "k", (result, 3), paths_in((result, 3)))
    found = store.lookup("stage", "k")
    assert found is not None and found.result == (files["out"], 3)
    assert store.lookup("stage", "other-key") is None
    # Touched, or copied back with the same bytes: still finished.
    os.utime(files["out"], ns=(5, 5))
    assert store.lookup("stage", "k") is not None
    copy = tmp_path / "copy.txt"
    shutil.copy(files["out"], copy)
    copy.replace(files["out"])
    assert store.lookup("stage", "k") is not None
    files["out"].write_text("HELLO, edited")
    assert store.lookup("stage", "k") is None
    store.record("stage", "k", result, [result])
    files["out"].unlink()
    assert store.lookup("stage", "k") is None


def test_a_folder_output_is_kept_while_it_exists(tmp_path: Path) -> None:
    store = CompletionStore(RunLayout(tmp_path))
    folder = tmp_path / "model"
    folder.mkdir()
    store.record("build", "k", folder, [folder])
    assert store.lookup("build", "k") is not None
    folder.rmdir()
    assert store.lookup("build", "k") is None


def test_a_file_is_hashed_once_per_version(tmp_path: Path, digests: DigestCache) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"x" * 1000)
    first = digests.version(path)
    assert first is not None
    entries = list(digests.folder.iterdir())
    assert len(entries) == 1
    stamp = entries[0].stat().st_mtime_ns
    assert digests.version(path) == first and entries[0].stat().st_mtime_ns == stamp
    path.write_bytes(b"y" * 1000)
    second = digests.version(path)
    assert second is not None and second.sha256 != first.sha256
    assert digests.version(tmp_path / "missing") is None


def test_a_torn_or_old_record_is_no_record(tmp_path: Path) -> None:
    store = CompletionStore(RunLayout(tmp_path))
    path = store.root / "stage" / "k.pkl"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x80\x04")  # cut short
    assert store.lookup("stage", "k") is None
