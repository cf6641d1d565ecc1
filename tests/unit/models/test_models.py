"""Student format, model loading (builtin, local folder, offline hub cache) and placeholders."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import Gemma2Config, Gemma2ForCausalLM, GPT2LMHeadModel

from saladpipe.data_schemas.config import ModelSpec
from saladpipe.data_schemas.errors import SaladpipeError
from saladpipe.models import (
    Qwen2AudioStudent,
    SpeechAdaptedLM,
    Student,
    TextLM,
    check_shared_vocabulary,
    fingerprint_dir,
    load_student,
    load_teacher,
    model_id,
    resolve_device,
    resolve_dtype,
)
from saladpipe.models.configs import gpt2_config
from saladpipe.models.distillation import DistillationScorer, ScoreItem
from saladpipe.models.speech_lm import MANIFEST_FILE
from tests.model_factories import (
    OTHER_TEXTS,
    fake_hub_snapshot,
    group_norm_student,
    load_pair,
    noise,
    placeholder_dirs,
    qwen2_audio_student,
    use_offline_hf_cache,
    whisper_student,
)

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return placeholder_dirs(tmp_path_factory.mktemp("placeholders"))


def _logits(student: Student, clips: list, ids: list[list[int]]) -> torch.Tensor:
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


@pytest.fixture(scope="module")
def qwen(dirs: dict[str, Path]) -> Qwen2AudioStudent:
    return qwen2_audio_student(dirs["placeholder-teacher"])


def test_qwen2_audio_student_reads_what_its_own_processor_lays_out(
    qwen: Qwen2AudioStudent, dirs: dict[str, Path]
) -> None:
    """Same token layout as transformers' Qwen2AudioProcessor, same logits as the model."""
    from transformers import Qwen2AudioProcessor

    teacher, _ = load_pair(dirs)
    processor = Qwen2AudioProcessor(
        feature_extractor=qwen.feature_extractor, tokenizer=qwen.tokenizer
    )
    clips = [noise(0.5, seed=1), noise(1.2, seed=2)]
    texts = [" rivers and", " music and the words"]
    ids = [teacher.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    inputs = processor(
        text=[f"<|audio_bos|><|AUDIO|><|audio_eos|>{t}" for t in texts],
        audio=clips,
        sampling_rate=16000,
        return_tensors="pt",
        padding=True,
    )
    with torch.inference_mode():
        ours = qwen(clips, ids)
        theirs = qwen.model(**inputs).logits
    lengths = inputs["attention_mask"].sum(-1).tolist()
    assert [qwen.audio_positions(c.size) + len(i) for c, i in zip(clips, ids, strict=True)] == (
        lengths
    )
    expected = torch.cat(
        [
            theirs[b, n - len(i) - 1 : n - 1]
            for b, (n, i) in enumerate(zip(lengths, ids, strict=True))
        ]
    )
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)
    for b, (n, i) in enumerate(zip(lengths, ids, strict=True)):
        assert inputs["input_ids"][b, n - len(i) : n].tolist() == i


def test_qwen2_audio_student_scores_do_not_depend_on_the_batch(
    qwen: Qwen2AudioStudent, dirs: dict[str, Path]
) -> None:
    teacher, _ = load_pair(dirs)
    scorer = DistillationScorer(teacher, qwen, batch_tokens=4096, batch_size=8, max_tokens=256)
    assert scorer.vocab_size == len(teacher.tokenizer) == len(qwen.tokenizer) - 3
    items = [
        ScoreItem("a", "Sentence 3 is about", "rivers and the words", noise(0.4, seed=1), 16000),
        ScoreItem("b", "Sentence 4 is", "about music", noise(1.7, seed=2), 16000),
        ScoreItem("c", "Sentence", "is about trains", noise(0.9, rate=22050, seed=3), 22050),
    ]
    batched = scorer.score(items)
    for item, together in zip(items, batched, strict=True):
        (alone,) = scorer.score([item])
        assert together.status == alone.status == "ok"
        assert together.misalignment is not None and alone.misalignment is not None
        assert abs(together.misalignment - alone.misalignment) < 1e-5
        assert together.forgetting is not None and alone.forgetting is not None
        assert abs(together.forgetting - alone.forgetting) < 1e-5


def test_qwen2_audio_student_loads_from_a_folder_and_the_hub_cache(
    qwen: Qwen2AudioStudent, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    qwen.save_pretrained(tmp_path / "qwen")
    assert not (tmp_path / "qwen" / MANIFEST_FILE).exists()
    clips, ids = [noise(0.6, seed=4)], [[5, 6, 7]]
    local = load_student(ModelSpec(source=str(tmp_path / "qwen")), "cpu", "float32")
    assert isinstance(local, Qwen2AudioStudent)
    assert re.fullmatch(r"qwen@[0-9a-f]{12}", local.model_id)
    assert torch.equal(_logits(qwen, clips, ids), _logits(local, clips, ids))
    hf_home = tmp_path / "hf"
    fake_hub_snapshot(hf_home, "org/qwen-audio", tmp_path / "qwen", COMMIT)
    use_offline_hf_cache(monkeypatch, hf_home)
    hub = load_student(ModelSpec(source="org/qwen-audio"), "cpu", "float32")
    assert isinstance(hub, Qwen2AudioStudent) and hub.model_id == f"org/qwen-audio@{COMMIT}"
    assert model_id(ModelSpec(source="org/qwen-audio"), "student") == hub.model_id


def test_a_folder_of_neither_student_kind_is_refused(dirs: dict[str, Path]) -> None:
    with pytest.raises(SaladpipeError, match="not a Qwen2-Audio checkpoint") as info:
        load_student(ModelSpec(source=str(dirs["placeholder-teacher"])), "cpu", "float32")
    assert "\n" not in str(info.value)


def test_a_student_may_add_tokens_after_the_teacher_vocabulary(
    qwen: Qwen2AudioStudent, dirs: dict[str, Path], tmp_path: Path
) -> None:
    teacher, _ = load_pair(dirs)
    assert check_shared_vocabulary(teacher.tokenizer, qwen.tokenizer) == len(teacher.tokenizer)
    # The other way round the teacher's audio markers are missing from the student.
    with pytest.raises(
        SaladpipeError, match=r"'<\|audio_bos\|>' is id \d+ in the teacher but absent"
    ):
        check_shared_vocabulary(qwen.tokenizer, teacher.tokenizer)
    # An ordinary (not added) token of the student's own is refused too.
    other, _ = load_pair(placeholder_dirs(tmp_path, texts=OTHER_TEXTS))
    with pytest.raises(SaladpipeError, match="tokenizers differ"):
        check_shared_vocabulary(teacher.tokenizer, other.tokenizer)


def test_model_ids_are_known_without_loading_and_follow_the_files(
    dirs: dict[str, Path], tmp_path: Path
) -> None:
    teacher, student = load_pair(dirs)
    spec = ModelSpec(source="builtin:placeholder-teacher")
    assert model_id(spec, "teacher", dirs) == teacher.model_id
    assert model_id(ModelSpec(source="builtin:placeholder-student"), "student", dirs) == (
        student.model_id
    )
    copy = tmp_path / "teacher"
    shutil.copytree(dirs["placeholder-teacher"], copy)
    before = model_id(ModelSpec(source=str(copy)), "teacher")
    assert before.split("@")[1] == teacher.model_id.split("@")[1]
    config = copy / "config.json"
    config.write_text(config.read_text() + "\n")  # any change of any file: a new id
    assert model_id(ModelSpec(source=str(copy)), "teacher") != before


def _gpt2(**config: Any) -> GPT2LMHeadModel:
    torch.manual_seed(0)
    shape = gpt2_config(64, 0, width=32, layers=1, heads=2, context=1024, **config)
    return GPT2LMHeadModel(shape).eval()


def test_text_lm_heads_match_the_models_forward() -> None:
    """Gemma's soft-capping is applied like the model does; positions are gathered exactly."""
    torch.manual_seed(0)
    gemma = Gemma2ForCausalLM(
        Gemma2Config(
            vocab_size=64,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=16,
            final_logit_softcapping=0.05,  # small enough to matter for random weights
        )
    ).eval()
    for model in (_gpt2(), gemma):
        lm = TextLM(model)
        lm.verify("teacher")
        with torch.inference_mode():
            hidden = lm.continuation_hidden([[1, 2, 3], [4]], [[5, 6], [7, 8, 9]], pad_id=0)
            ours = lm.logits(hidden)
            first = model(input_ids=torch.tensor([[1, 2, 3, 5, 6]])).logits[0, 2:4]
            second = model(input_ids=torch.tensor([[4, 7, 8, 9]])).logits[0, 0:3]
        torch.testing.assert_close(ours, torch.cat([first, second]), atol=1e-5, rtol=1e-5)
    assert float(ours.abs().max()) <= 0.05


def test_a_model_with_an_unknown_logit_transform_is_refused() -> None:
    model = _gpt2()
    model.config.logit_scale = 3.0  # claims a scale its forward pass does not apply
    with pytest.raises(SaladpipeError, match="cannot be computed in chunks"):
        TextLM(model).verify("teacher")
