"""Training mixes end to end on real files: the draw, its reasons, its determinism, the
dataset a trainer iterates, the materialised mix and `verify` on a mix."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from torch.utils.data import DataLoader

from saladpipe.cli import main
from saladpipe.data_schemas.io import sha256_file
from saladpipe.data_schemas.shard_writer import ShardLimits
from saladpipe.mix.dataset import MixDataset
from saladpipe.tts.audio import resample
from tests.factories import ToneEngine, tone_run
from tests.mix_factories import write_mix_config, write_text_lines, write_tone_nemo


@dataclass(frozen=True)
class Sources:
    """One source of each kind the default mix uses, and the audio each speech row holds."""

    run: Path
    nemo: Path
    text: Path
    audio: dict[str, np.ndarray]  # 16 kHz samples by item id


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Sources:
    root = tmp_path_factory.mktemp("sources")
    limits = ShardLimits(max_bytes=50_000, row_group_bytes=20_000)
    run, engine_audio = tone_run(root, n=24, limits=limits)
    nemo, nemo_audio = write_tone_nemo(root / "natural", 40)
    audio = {k: resample(v, ToneEngine.RATE, 16000) for k, v in engine_audio.items()}
    return Sources(run, nemo, write_text_lines(root / "text.txt", 400), {**audio, **nemo_audio})


def thirds(path: Path, sources: Sources, nemo: Path | None = None, **mix: Any) -> Path:
    """The paper's stage-II mix: equal thirds of synthetic, natural and text."""
    return write_mix_config(
        path,
        {"name": "thirds", "seed": 7, "unit": "hours", "total": 0.03, **mix},
        [
            {"name": "synthetic", "kind": "shards", "path": sources.run},
            {"name": "natural", "kind": "nemo_manifest", "path": nemo or sources.nemo},
            {"name": "text", "kind": "text", "path": sources.text},
        ],
    )


def build(config: Path, out: Path, *flags: str) -> dict[str, Any]:
    assert main(["mix", str(config), "--output-dir", str(out), *flags]) == 0
    return dict(json.loads((out / "mix.json").read_text()))


def test_the_same_config_gives_the_same_mix_byte_for_byte(sources: Sources, tmp_path: Path) -> None:
    config = thirds(tmp_path / "mix.toml", sources)
    summaries = [build(config, tmp_path / f"out{i}") for i in range(2)]
    assert summaries[0] == summaries[1]
    assert sha256_file(tmp_path / "out0" / "rows.parquet") == sha256_file(
        tmp_path / "out1" / "rows.parquet"
    )
    rows = pq.read_table(tmp_path / "out0" / "rows.parquet").to_pylist()
    by_name = {s["name"]: s for s in summaries[0]["sources"]}
    assert [(s["kind"], s["format"]) for s in by_name.values()] == [
        ("speech", "shards"),
        ("speech", "nemo_manifest"),
        ("text", "text"),
    ]
    for source in by_name.values():
        assert source["share"] == pytest.approx(1 / 3)
        assert source["requested"] == pytest.approx(0.01)
        assert source["requested"] <= source["taken"] < source["requested"] + 2 / 3600
        assert source["rows"] == sum(1 for r in rows if r["source"] == source["name"])
    assert by_name["text"]["skipped"] == {"empty": 1}
    assert len({r["item_id"] for r in rows}) == len(rows)
    assert {r["kind"] for r in rows if r["source"] == "text"} == {"text"}


def test_adding_a_source_moves_no_other_source_picks(sources: Sources, tmp_path: Path) -> None:
    """Each source draws on its own stream: a third source changes nothing of the others."""
    two = write_mix_config(
        tmp_path / "two.toml",
        {"seed": 7, "total": 0.02},
        [
            {"name": "synthetic", "kind": "shards", "path": sources.run},
            {"name": "natural", "kind": "nemo_manifest", "path": sources.nemo},
        ],
    )
    build(two, tmp_path / "two")
    build(thirds(tmp_path / "three.toml", sources), tmp_path / "three")

    def picks(out: Path) -> dict[str, list[str]]:
        rows = pq.read_table(out / "rows.parquet").to_pylist()
        return {
            s: [r["item_id"] for r in rows if r["source"] == s] for s in ("synthetic", "natural")
        }

    assert picks(tmp_path / "two") == picks(tmp_path / "three")


def test_a_source_too_small_for_its_share_is_refused_by_name(
    sources: Sources, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_mix_config(
        tmp_path / "mix.toml",
        {"unit": "rows", "total": 1000},
        [{"name": "s", "kind": "shards", "path": sources.run}],
    )
    assert main(["mix", str(config), "--output-dir", str(tmp_path / "o")]) == 2
    assert "source s holds 24.000 rows, the mix asks 1000.000" in capsys.readouterr().err
    assert not (tmp_path / "o" / "mix.json").exists()


def test_missing_and_undecodable_audio_are_reasons_and_the_draw_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest, _ = write_tone_nemo(tmp_path / "natural", 10)
    (tmp_path / "natural" / "n0.wav").unlink()
    (tmp_path / "natural" / "n1.wav").write_bytes(b"RIFF not really a wave file")
    with manifest.open("a") as fh:
        fh.write("{not json\n")
        fh.write(json.dumps({"audio_filepath": "n9.wav", "text": "no duration"}) + "\n")
    config = write_mix_config(
        tmp_path / "mix.toml",
        {"unit": "rows", "total": 10, "allow_shortfall": True},
        [{"name": "natural", "kind": "nemo_manifest", "path": manifest}],
    )
    summary = build(config, tmp_path / "out")
    (source,) = summary["sources"]
    # Every row is visited to find ten: both bad files are met and passed over.
    assert source["skipped"] == {
        "missing_audio": 1,
        "not_a_manifest_line": 2,
        "undecodable_audio": 1,
    }
    assert source["rows"] == 8 and source["taken"] == 8 and source["requested"] == 10
    ids = pq.read_table(tmp_path / "out" / "rows.parquet").column("item_id").to_pylist()
    assert not {"n0", "n1"} & set(ids)
    assert "left out: 1 missing_audio, 2 not_a_manifest_line, 1 undecodable_audio" in (
        capsys.readouterr().out
    )
    capsys.readouterr()
    short = write_mix_config(
        tmp_path / "short.toml",
        {"unit": "rows", "total": 9},
        [{"name": "natural", "kind": "nemo_manifest", "path": manifest}],
    )
    assert main(["mix", str(short), "--output-dir", str(tmp_path / "short")]) == 2
    assert (
        "source natural: only 8.000 of the 9.000 rows asked are usable" in capsys.readouterr().err
    )


def test_several_runs_are_one_source_in_which_no_text_appears_twice(
    sources: Sources, tmp_path: Path
) -> None:
    again, _ = tone_run(tmp_path / "again", n=30)
    config = write_mix_config(
        tmp_path / "mix.toml",
        {"unit": "rows", "total": 30},
        [{"name": "synthetic", "kind": "shards", "path": [sources.run, again]}],
    )
    (source,) = build(config, tmp_path / "out")["sources"]
    # The second run repeats the first one's 24 texts and adds 6.
    assert source["skipped"] == {"repeated_text": 24}
    assert source["available"] == 30
    rows = pq.read_table(tmp_path / "out" / "rows.parquet").to_pylist()
    assert len({r["text"] for r in rows}) == len(rows) == 30
    assert sum(r["locator"].startswith(str(again)) for r in rows) == 6


def _epoch(mix: Path, epoch: int, seed: int | None = None) -> dict[int, list[dict[str, Any]]]:
    """What each of two ranks reads in one epoch, each through two dataloader workers."""
    seen = {}
    for rank in (0, 1):
        dataset = MixDataset(mix, seed=seed, epoch=epoch, rank=rank, world_size=2)
        # spawn: forked workers would inherit the test process's Prefect threads and atexit hooks
        loader = DataLoader(
            dataset, batch_size=None, num_workers=2, multiprocessing_context="spawn"
        )
        seen[rank] = list(loader)
    return seen


def test_the_mix_dataset_reads_every_row_once_per_epoch_in_its_shares(
    sources: Sources, tmp_path: Path
) -> None:
    out = tmp_path / "mix"
    build(thirds(tmp_path / "mix.toml", sources, unit="rows", total=60), out)
    rows = pq.read_table(out / "rows.parquet").to_pylist()
    share = {name: n / len(rows) for name, n in Counter(r["source"] for r in rows).items()}
    epochs = [_epoch(out, 0), _epoch(out, 1)]
    for seen in epochs:
        everything = [(e["source"], e["item_id"]) for rank in seen.values() for e in rank]
        assert sorted(everything) == sorted((r["source"], r["item_id"]) for r in rows)
        for examples in seen.values():
            got = Counter(e["source"] for e in examples)
            for name, expected in share.items():
                assert got[name] / len(examples) == pytest.approx(expected, abs=0.05)
            # Interleaved, not in blocks: the first sixth already holds every source.
            assert {e["source"] for e in examples[: len(examples) // 6]} == set(share)
        for example in (e for rank in seen.values() for e in rank):
            if example["kind"] == "text":
                assert example["audio"] is None
                continue
            assert example["sampling_rate"] == 16000
            np.testing.assert_allclose(
                example["audio"], sources.audio[example["item_id"]], atol=2e-4
            )
    order = {
        epoch: [[e["item_id"] for e in seen[r]] for r in (0, 1)]
        for epoch, seen in enumerate(epochs)
    }
    again = _epoch(out, 0)
    assert order[0] == [[e["item_id"] for e in again[r]] for r in (0, 1)]
    assert order[0] != order[1]
    other_seed = MixDataset(out, seed=1, rank=0, world_size=2, decode_audio=False)
    assert [e["item_id"] for e in other_seed] != order[0][0]


def test_a_materialised_mix_reads_the_same_without_its_sources(
    sources: Sources, tmp_path: Path
) -> None:
    import datasets

    own = tmp_path / "natural"
    shutil.copytree(sources.nemo.parent, own)
    out = tmp_path / "mix"
    summary = build(
        thirds(tmp_path / "mix.toml", sources, nemo=own / "manifest.jsonl"), out, "--materialize"
    )
    assert summary["shards"] and main(["verify", str(out)]) == 0
    before = list(MixDataset(out, rank=0, world_size=1))
    shutil.rmtree(own)
    after = list(MixDataset(out, rank=0, world_size=1))
    assert [e["item_id"] for e in after] == [e["item_id"] for e in before]
    for old, new in zip(before, after, strict=True):
        if old["kind"] == "speech":
            np.testing.assert_array_equal(old["audio"], new["audio"])
    files = sorted(str(p) for p in (out / "shards").glob("*.parquet"))
    loaded = datasets.load_dataset("parquet", data_files=files, split="train")
    assert isinstance(loaded.features["audio"], datasets.Audio)
    assert loaded.num_rows == sum(s["rows"] for s in summary["sources"])
    natural = next(r for r in loaded if r["source"] == "natural")
    decoded = natural["audio"].get_all_samples()
    np.testing.assert_allclose(
        decoded.data.numpy()[0], sources.audio[natural["item_id"]], atol=2e-4
    )
    assert next(r for r in loaded if r["kind"] == "text")["audio"] is None


def test_verify_a_mix_finds_what_changed(
    sources: Sources, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    own = tmp_path / "natural"
    shutil.copytree(sources.nemo.parent, own)
    config = thirds(tmp_path / "mix.toml", sources, nemo=own / "manifest.jsonl")
    linked, materialised = tmp_path / "linked", tmp_path / "materialised"
    build(config, linked)
    build(config, materialised, "--materialize")
    assert main(["verify", str(linked)]) == 0
    assert "every file matches the manifest" in capsys.readouterr().out
    drawn = next(
        r["item_id"]
        for r in pq.read_table(linked / "rows.parquet").to_pylist()
        if r["source"] == "natural"
    )
    (own / f"{drawn}.wav").unlink()
    assert main(["verify", str(linked)]) == 1
    assert (
        f"missing_audio: {own / f'{drawn}.wav'}: row of source natural" in capsys.readouterr().out
    )
    assert main(["verify", str(materialised)]) == 0
    shard = next((materialised / "shards").glob("*.parquet"))
    shard.write_bytes(shard.read_bytes()[:-10] + b"0123456789")
    (materialised / "shards" / "stray.parquet").write_bytes(b"")
    assert main(["verify", str(materialised)]) == 1
    out = capsys.readouterr().out
    assert f"altered: shards/{shard.name}: checksum differs" in out
    assert "extra: shards/stray.parquet: not listed in the manifest" in out
    assert main(["verify", str(tmp_path)]) == 1


def test_the_datasets_form_splits_over_ranks_and_decodes_audio(
    sources: Sources, tmp_path: Path
) -> None:
    from datasets.distributed import split_dataset_by_node

    from saladpipe.mix.hf import hf_mix

    out = tmp_path / "mix"
    build(thirds(tmp_path / "mix.toml", sources, unit="rows", total=30), out)
    rows = pq.read_table(out / "rows.parquet").to_pylist()
    seen = []
    for rank in (0, 1):
        node = split_dataset_by_node(hf_mix(out, slots=4), rank=rank, world_size=2)
        examples = list(node)
        assert Counter(e["source"] for e in examples) == {"synthetic": 5, "natural": 5, "text": 5}
        seen += examples
    assert sorted(e["item_id"] for e in seen) == sorted(r["item_id"] for r in rows)
    for example in seen:
        if example["kind"] == "text":
            assert example["audio"] is None
            continue
        decoded = example["audio"].get_all_samples()
        assert decoded.sample_rate == 16000
        np.testing.assert_allclose(
            decoded.data.numpy()[0], sources.audio[example["item_id"]], atol=2e-4
        )
    again = [
        e["item_id"] for e in split_dataset_by_node(hf_mix(out, slots=4), rank=0, world_size=2)
    ]
    assert again == [e["item_id"] for e in seen[:15]]
