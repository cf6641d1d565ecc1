"""The natural-speech stand-in: the stage-I speech the builtin student heard, as a NeMo
manifest a mix reads; and the builtin source names a mix config may use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile as sf

from saladpipe.cli import main
from saladpipe.pipeline.probe import split_text
from saladpipe.training.recipe import REDUCED_RECIPE
from saladpipe.training.speech import PROBE_SPLIT
from saladpipe.training.standin import stage1_speech_manifest
from saladpipe.training.texts import build_texts
from tests.mix_factories import write_mix_config


def test_the_stage1_speech_is_a_nemo_manifest_of_the_clips_the_student_heard(
    tmp_path: Path,
) -> None:
    manifest = stage1_speech_manifest(REDUCED_RECIPE, tmp_path)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    glosses = build_texts(REDUCED_RECIPE).stage1
    assert [r["id"] for r in rows] == [g.synset_id for g in glosses]
    for row, gloss in zip(rows, glosses, strict=True):
        assert row["text"] == split_text(gloss.text, PROBE_SPLIT)[0]
        assert row["domain"] == gloss.domain in REDUCED_RECIPE.heard_domains
        info = sf.info(row["audio_filepath"])
        assert info.samplerate == 16000
        assert row["duration"] == pytest.approx(info.duration, abs=1e-4)
    before = manifest.stat().st_mtime_ns
    assert stage1_speech_manifest(REDUCED_RECIPE, tmp_path) == manifest
    assert manifest.stat().st_mtime_ns == before


@pytest.mark.parametrize(
    ("kind", "path", "message"),
    [
        (
            "nemo_manifest",
            "builtin:natural-speech",
            "unknown builtin source 'builtin:natural-speech'",
        ),
        ("shards", "builtin:stage1-speech", 'give it kind = "nemo_manifest"'),
    ],
)
def test_a_wrong_builtin_source_is_a_one_line_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, path: str, message: str
) -> None:
    config = write_mix_config(
        tmp_path / "mix.toml", {"total": 1.0}, [{"name": "s", "kind": kind, "path": path}]
    )
    assert main(["mix", str(config), "--output-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
