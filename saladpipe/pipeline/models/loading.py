"""Loading teacher and student from a builtin name, a local folder or a hub name.

Loading never runs remote code and reads safetensors only. Hub names go through
the Hugging Face cache, so they also work offline (HF_HUB_OFFLINE=1) once cached.
Every failure becomes a one-line SaladpipeError that names the source.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from huggingface_hub import snapshot_download, try_to_load_from_cache
from huggingface_hub.errors import EntryNotFoundError
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from saladpipe.data_schemas.config import BUILTIN_PREFIX, ModelSpec, is_builtin
from saladpipe.data_schemas.errors import ConfigError, SaladpipeError
from saladpipe.pipeline.models.speech_lm import (
    ADAPTER_FILE,
    ENCODER_DIR,
    LM_DIR,
    MANIFEST_FILE,
    SpeechAdaptedLM,
)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# Errors from transformers/huggingface_hub that mean "this source cannot be loaded".
_LOAD_ERRORS = (OSError, ValueError, EntryNotFoundError)


@dataclass(frozen=True)
class Teacher:
    """The text LM with its tokenizer; `model_id` names its weights in score tables."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    model_id: str


@dataclass(frozen=True)
class _Source:
    """Where a spec points: a local folder (`local`) or a hub repository name."""

    location: str
    local: bool


def resolve_device(name: str) -> torch.device:
    """`auto` is CUDA when available, else CPU; an unavailable CUDA is an error, not a fallback."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"config error: models.device: unknown device {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"config error: models.device: {name!r} requested but CUDA is not available"
        )
    return device


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """`auto` is bfloat16 on CUDA and float32 elsewhere (CPU half precision is slow)."""
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if name not in _DTYPES:
        raise ConfigError(f"config error: models.dtype: unknown dtype {name!r}")
    return _DTYPES[name]


def _place(model: torch.nn.Module, device: torch.device) -> None:
    """Move to the device, frozen and in eval mode (typed as a Module: transformers' own
    `to` annotation does not type-check)."""
    model.to(device).eval().requires_grad_(False)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _resolve_source(spec: ModelSpec, role: str, builtin_dirs: Mapping[str, Path] | None) -> _Source:
    source = spec.source
    if is_builtin(source):
        name = source[len(BUILTIN_PREFIX) :]
        dirs = builtin_dirs or {}
        if name not in dirs:
            known = ", ".join(sorted(dirs)) or "none built"
            raise SaladpipeError(f"unknown builtin {role} model {source!r} (known: {known})")
        if not Path(dirs[name]).is_dir():
            raise SaladpipeError(f"builtin {role} model {source!r}: folder missing: {dirs[name]}")
        return _Source(str(dirs[name]), local=True)
    if source.startswith(("/", "./", "../", "~")):
        path = Path(source).expanduser()
        if not path.is_dir():
            raise SaladpipeError(f"{role} model folder not found: {source}")
        return _Source(str(path), local=True)
    if Path(source).is_dir():
        return _Source(source, local=True)
    return _Source(source, local=False)


def fingerprint_dir(path: Path) -> str:
    """sha256 over every file's relative path and bytes, so any change of weights,
    config or tokenizer gives a new model id."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path)
        if any(part.startswith(".") for part in rel.parts):
            continue
        digest.update(rel.as_posix().encode() + b"\0")
        with file.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def _local_model_id(path: Path) -> str:
    return f"{path.resolve().name}@{fingerprint_dir(path)[:12]}"


def _hub_commit(repo_id: str, revision: str | None) -> str:
    """The commit that the cache resolved the revision to; the revision itself if unknown."""
    cached = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    if isinstance(cached, str):
        return Path(cached).parent.name
    return revision or "main"


def load_teacher(
    spec: ModelSpec,
    device: str = "auto",
    dtype: str = "auto",
    builtin_dirs: Mapping[str, Path] | None = None,
) -> Teacher:
    """The teacher causal LM and tokenizer, in eval mode on the resolved device and dtype."""
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    source = _resolve_source(spec, "teacher", builtin_dirs)
    revision = None if source.local else spec.revision
    common = {
        "revision": revision,
        "trust_remote_code": False,
        "local_files_only": source.local,
    }
    try:
        model = AutoModelForCausalLM.from_pretrained(
            source.location, dtype=torch_dtype, use_safetensors=True, **common
        )
        tokenizer = AutoTokenizer.from_pretrained(source.location, **common)
    except _LOAD_ERRORS as exc:
        raise SaladpipeError(
            f"cannot load teacher model {spec.source!r}: {_first_line(exc)}"
        ) from None
    _place(model, torch_device)
    if source.local:
        model_id = _local_model_id(Path(source.location))
    else:
        model_id = f"{source.location}@{_hub_commit(source.location, spec.revision)}"
    return Teacher(model=model, tokenizer=tokenizer, model_id=model_id)


def load_student(
    spec: ModelSpec,
    device: str = "auto",
    dtype: str = "auto",
    builtin_dirs: Mapping[str, Path] | None = None,
) -> SpeechAdaptedLM:
    """The speech-adapted student, in eval mode; hub names fetch only the student layout."""
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    source = _resolve_source(spec, "student", builtin_dirs)
    if source.local:
        folder = Path(source.location)
        model_id = _local_model_id(folder)
    else:
        try:
            folder = Path(
                snapshot_download(
                    source.location,
                    revision=spec.revision,
                    allow_patterns=[MANIFEST_FILE, ADAPTER_FILE, f"{ENCODER_DIR}/*", f"{LM_DIR}/*"],
                )
            )
        except _LOAD_ERRORS as exc:
            raise SaladpipeError(
                f"cannot load student model {spec.source!r}: {_first_line(exc)}"
            ) from None
        model_id = f"{source.location}@{folder.name}"
    student = SpeechAdaptedLM.from_pretrained(folder, torch_device, torch_dtype)
    student.model_id = model_id
    return student


def check_shared_vocabulary(
    teacher_tokenizer: PreTrainedTokenizerBase, student_tokenizer: PreTrainedTokenizerBase
) -> None:
    """Refuse a teacher/student pair whose token ids mean different things.

    The KL compares the two distributions id by id, so the vocabularies must be
    identical. Special tokens must match too, except padding, which is masked and
    never scored.
    """
    teacher_vocab = teacher_tokenizer.get_vocab()
    student_vocab = student_tokenizer.get_vocab()
    if teacher_vocab != student_vocab:
        missing = len(teacher_vocab) + len(student_vocab) + 1

        def order(token: str) -> tuple[int, str]:
            ids = (teacher_vocab.get(token, missing), student_vocab.get(token, missing))
            return min(ids), token

        differing = (
            t
            for t in set(teacher_vocab) | set(student_vocab)
            if teacher_vocab.get(t) != student_vocab.get(t)
        )
        token = min(differing, key=order)
        raise SaladpipeError(
            f"teacher and student tokenizers differ: token {token!r} is "
            f"{_describe_id(teacher_vocab, token)} in the teacher but "
            f"{_describe_id(student_vocab, token)} in the student"
        )
    teacher_special = _special_tokens(teacher_tokenizer)
    student_special = _special_tokens(student_tokenizer)
    for role in sorted(set(teacher_special) | set(student_special)):
        if teacher_special.get(role) != student_special.get(role):
            raise SaladpipeError(
                f"teacher and student tokenizers differ: {role} is "
                f"{teacher_special.get(role)!r} in the teacher and "
                f"{student_special.get(role)!r} in the student"
            )


def _describe_id(vocab: Mapping[str, int], token: str) -> str:
    return f"id {vocab[token]}" if token in vocab else "absent"


def _special_tokens(tokenizer: PreTrainedTokenizerBase) -> dict[str, str]:
    mapping = tokenizer.special_tokens_map
    return {role: str(value) for role, value in mapping.items() if role != "pad_token"}
