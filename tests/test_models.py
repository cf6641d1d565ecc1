"""Student format, model loading (builtin, local folder, offline hub cache) and placeholders."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from saladpipe.data_schemas.config import ModelSpec
from saladpipe.data_schemas.errors import SaladpipeError
from saladpipe.pipeline.models import (
    SpeechAdaptedLM,
    check_shared_vocabulary,
    fingerprint_dir,
    load_student,
    load_teacher,
    resolve_device,
    resolve_dtype,
)
from saladpipe.pipeline.models.speech_lm import MANIFEST_FILE
from tests.model_factories import (
    OTHER_TEXTS,
    fake_hub_snapshot,
    group_norm_student,
    load_pair,
    noise,
    placeholder_dirs,
    use_offline_hf_cache,
    whisper_student,
)

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return placeholder_dirs(tmp_path_factory.mktemp("placeholders"))


def _logits(student: SpeechAdaptedLM, clips: list, ids: list[list[int]]) -> torch.Tensor:
    with torch.inference_mode():
        return student(clips, ids)


def test_student_round_trip_gives_identical_outputs(dirs: dict[str, Path], tmp_path: Path) -> None:
    _, student = load_pair(dirs)
    student.save_pretrained(tmp_path / "copy")
    reloaded = SpeechAdaptedLM.from_pretrained(tmp_path / "copy")
    clips, ids = [noise(0.7, seed=1), noise(0.3, seed=2)], [[5, 6, 7], [8, 9]]
    assert torch.equal(_logits(student, clips, ids), _logits(reloaded, clips, ids))
    manifest = json.loads((tmp_path / "copy" / MANIFEST_FILE).read_text())
    assert manifest["format"] == "saladpipe-speech-adapted-lm"
    assert manifest["encoder_kind"] == "wav2vec2"
    assert manifest["adapter"]["stride"] == 4
    for name in ("adapter.safetensors", "audio_encoder/model.safetensors", "lm/model.safetensors"):
        assert (tmp_path / "copy" / name).is_file()
    assert (tmp_path / "copy" / "audio_encoder" / "preprocessor_config.json").is_file()


@pytest.mark.parametrize("norm", ["layer", "group"])
def test_encode_audio_does_not_depend_on_the_batch(dirs: dict[str, Path], norm: str) -> None:
    _, student = load_pair(dirs)
    if norm == "group":
        student = group_norm_student(student)
    clips = [noise(1.3, seed=1), noise(0.4, seed=2), noise(0.9, seed=3)]
    with torch.inference_mode():
        batched, lengths = student.encode_audio(clips)
        for i, clip in enumerate(clips):
            alone, length = student.encode_audio([clip])
            assert int(lengths[i]) == int(length[0]) == student.audio_embed_length(clip.size)
            torch.testing.assert_close(batched[i, : int(length[0])], alone[0], atol=1e-5, rtol=0)
    # 320x downsampling then stride 4: 1.3 s at 16 kHz is 64 frames -> 16 embeddings.
    assert student.audio_embed_length(round(1.3 * 16000)) == 16


def test_whisper_student_encodes_saves_and_loads(dirs: dict[str, Path], tmp_path: Path) -> None:
    student = whisper_student(dirs["placeholder-teacher"])
    assert student.encoder_kind == "whisper"
    assert student.max_audio_samples == 32000
    clips = [noise(0.5, seed=1), noise(1.5, seed=2)]
    with torch.inference_mode():
        embeds, lengths = student.encode_audio(clips)
        alone, _ = student.encode_audio([clips[0]])
    # 0.5 s = 50 mel frames -> 25 encoder frames -> ceil(25 / 2) = 13 embeddings.
    assert lengths.tolist() == [13, 38]
    torch.testing.assert_close(embeds[0, :13], alone[0, :13], atol=1e-5, rtol=0)
    student.save_pretrained(tmp_path / "whisper")
    reloaded = SpeechAdaptedLM.from_pretrained(tmp_path / "whisper")
    assert reloaded.encoder_kind == "whisper"
    ids = [[5, 6], [7, 8, 9]]
    assert torch.equal(_logits(student, clips, ids), _logits(reloaded, clips, ids))


def test_loading_by_local_path(dirs: dict[str, Path]) -> None:
    teacher = load_teacher(ModelSpec(source=str(dirs["placeholder-teacher"])), "cpu", "float32")
    student = load_student(ModelSpec(source=str(dirs["placeholder-student"])), "cpu", "float32")
    assert re.fullmatch(r"placeholder-teacher@[0-9a-f]{12}", teacher.model_id)
    assert re.fullmatch(r"placeholder-student@[0-9a-f]{12}", student.model_id)
    assert not teacher.model.training and not student.training
    builtin, _ = load_pair(dirs)
    assert builtin.model_id == teacher.model_id


def test_loading_by_hub_name_from_offline_cache(
    dirs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hf_home = tmp_path / "hf"
    fake_hub_snapshot(hf_home, "org/teacher", dirs["placeholder-teacher"], COMMIT)
    fake_hub_snapshot(hf_home, "org/student", dirs["placeholder-student"], COMMIT)
    use_offline_hf_cache(monkeypatch, hf_home)
    teacher = load_teacher(ModelSpec(source="org/teacher"), "cpu", "float32")
    student = load_student(ModelSpec(source="org/student", revision="main"), "cpu", "float32")
    assert teacher.model_id == f"org/teacher@{COMMIT}"
    assert student.model_id == f"org/student@{COMMIT}"
    assert len(teacher.tokenizer) == len(student.tokenizer)
    with pytest.raises(SaladpipeError, match="org/absent"):
        load_teacher(ModelSpec(source="org/absent"), "cpu", "float32")
    with pytest.raises(SaladpipeError, match="org/absent"):
        load_student(ModelSpec(source="org/absent"), "cpu", "float32")


def test_missing_folder_and_unknown_builtin_are_one_line_errors(
    dirs: dict[str, Path], tmp_path: Path
) -> None:
    missing = str(tmp_path / "nowhere")
    for loader in (load_teacher, load_student):
        with pytest.raises(SaladpipeError, match="folder not found") as info:
            loader(ModelSpec(source=missing), "cpu", "float32", None)
        assert missing in str(info.value) and "\n" not in str(info.value)
        with pytest.raises(SaladpipeError, match="builtin:nope"):
            loader(ModelSpec(source="builtin:nope"), "cpu", "float32", dirs)
    with pytest.raises(SaladpipeError, match=r"no saladpipe_student\.json"):
        load_student(ModelSpec(source=str(dirs["placeholder-teacher"])), "cpu", "float32")


def test_unsupported_student_format_version(dirs: dict[str, Path], tmp_path: Path) -> None:
    _, student = load_pair(dirs)
    student.save_pretrained(tmp_path / "s")
    manifest = json.loads((tmp_path / "s" / MANIFEST_FILE).read_text())
    manifest["version"] = 99
    (tmp_path / "s" / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(SaladpipeError, match="version 99 is not supported"):
        SpeechAdaptedLM.from_pretrained(tmp_path / "s")


def test_placeholders_are_deterministic_and_cached(tmp_path: Path, dirs: dict[str, Path]) -> None:
    first = placeholder_dirs(tmp_path / "a", seed=0)
    second = placeholder_dirs(tmp_path / "b", seed=0)
    other_seed = placeholder_dirs(tmp_path / "a", seed=1)
    for name in ("placeholder-teacher", "placeholder-student"):
        assert fingerprint_dir(first[name]) == fingerprint_dir(second[name])
        assert fingerprint_dir(first[name]) == fingerprint_dir(dirs[name])
        assert fingerprint_dir(first[name]) != fingerprint_dir(other_seed[name])
    stamp = (first["placeholder-teacher"] / "model.safetensors").stat().st_mtime_ns
    assert placeholder_dirs(tmp_path / "a", seed=0) == first
    assert (first["placeholder-teacher"] / "model.safetensors").stat().st_mtime_ns == stamp
    # Only finished builds remain in the cache: no staging folders.
    assert sorted(p.name.startswith("placeholders-") for p in (tmp_path / "a").iterdir()) == [
        True,
        True,
    ]


def test_shared_vocabulary_check_names_the_first_difference(
    dirs: dict[str, Path], tmp_path: Path
) -> None:
    teacher, student = load_pair(dirs)
    check_shared_vocabulary(teacher.tokenizer, student.tokenizer)
    other, _ = load_pair(placeholder_dirs(tmp_path, texts=OTHER_TEXTS))
    with pytest.raises(SaladpipeError, match=r"token '.+' is (id \d+|absent) in the teacher but"):
        check_shared_vocabulary(teacher.tokenizer, other.tokenizer)


def test_resolve_device_and_dtype() -> None:
    cpu = resolve_device("cpu")
    assert cpu == torch.device("cpu")
    assert resolve_dtype("auto", cpu) == torch.float32
    assert resolve_dtype("auto", torch.device("cuda")) == torch.bfloat16
    assert resolve_dtype("float16", cpu) == torch.float16
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    with pytest.raises(SaladpipeError, match="unknown device"):
        resolve_device("toaster")
