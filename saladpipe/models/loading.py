"""Loading teacher and student from a builtin name, a local folder or a hub name.

Loading never runs remote code and reads safetensors only. Hub names go through
the Hugging Face cache, so they also work offline (HF_HUB_OFFLINE=1) once cached.
Every failure becomes a one-line SaladpipeError that names the source.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from huggingface_hub import snapshot_download, try_to_load_from_cache
from huggingface_hub.errors import EntryNotFoundError
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from saladpipe.data_schemas.config import BUILTIN_PREFIX, ModelSpec, ModelsSection, is_builtin
from saladpipe.data_schemas.errors import ConfigError, SaladpipeError
from saladpipe.data_schemas.heavy import Heavy
from saladpipe.models.qwen2_audio import Qwen2AudioStudent
from saladpipe.models.speech_lm import (
    ADAPTER_FILE,
    ENCODER_DIR,
    LM_DIR,
    MANIFEST_FILE,
    SpeechAdaptedLM,
)
from saladpipe.models.student import Student

if TYPE_CHECKING:
    from saladpipe.models.distillation import DistillationScorer

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# Errors from transformers/huggingface_hub that mean "this source cannot be loaded".
_LOAD_ERRORS = (OSError, ValueError, EntryNotFoundError)
# Student kinds, asked in order whether they recognize a folder.
STUDENT_KINDS: tuple[type[Student], ...] = (SpeechAdaptedLM, Qwen2AudioStudent)
# What a hub student needs of either kind's layout; weights from safetensors only.
_STUDENT_FILES = [
    MANIFEST_FILE,
    ADAPTER_FILE,
    f"{ENCODER_DIR}/*",
    f"{LM_DIR}/*",
    "*.json",
    "*.safetensors",
    "*.txt",
]


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
    files = sorted(p for p in path.resolve().rglob("*") if p.is_file())
    stamp = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    return _fingerprinted_id(path.resolve(), stamp)


@functools.lru_cache(maxsize=64)
def _fingerprinted_id(path: Path, stamp: tuple[tuple[str, int, int], ...]) -> str:
    """Hashing a large checkpoint takes seconds: done once per unchanged folder and process."""
    return f"{path.name}@{fingerprint_dir(path)[:12]}"


def _hub_commit(repo_id: str, revision: str | None) -> str:
    """The commit that the cache resolved the revision to; the revision itself if unknown."""
    for filename in ("config.json", MANIFEST_FILE):
        cached = try_to_load_from_cache(repo_id, filename, revision=revision)
        if isinstance(cached, str):
            return Path(cached).parent.name
    return revision or "main"


def model_id(spec: ModelSpec, role: str, builtin_dirs: Mapping[str, Path] | None = None) -> str:
    """The id that names a model's weights in score tables, found without loading them.

    A local folder is named by a hash of its files; a hub model by the commit its
    cached copy resolves to (the revision name until it is cached).
    """
    source = _resolve_source(spec, role, builtin_dirs)
    if source.local:
        return _local_model_id(Path(source.location))
    return f"{source.location}@{_hub_commit(source.location, spec.revision)}"


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
    return Teacher(
        model=model, tokenizer=tokenizer, model_id=model_id(spec, "teacher", builtin_dirs)
    )


def load_student(
    spec: ModelSpec,
    device: str = "auto",
    dtype: str = "auto",
    builtin_dirs: Mapping[str, Path] | None = None,
) -> Student:
    """The student, in eval mode: a saladpipe speech-adapted LM or a Qwen2-Audio checkpoint."""
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    source = _resolve_source(spec, "student", builtin_dirs)
    if source.local:
        folder = Path(source.location)
    else:
        try:
            folder = Path(
                snapshot_download(
                    source.location, revision=spec.revision, allow_patterns=_STUDENT_FILES
                )
            )
        except _LOAD_ERRORS as exc:
            raise SaladpipeError(
                f"cannot load student model {spec.source!r}: {_first_line(exc)}"
            ) from None
    kind = next((k for k in STUDENT_KINDS if k.recognizes(folder)), None)
    if kind is None:
        raise SaladpipeError(
            f"not a student model: {spec.source} has no {MANIFEST_FILE} (saladpipe "
            "speech-adapted LM) and is not a Qwen2-Audio checkpoint (config.json "
            "model_type 'qwen2_audio')"
        )
    student = kind.from_pretrained(folder, torch_device, torch_dtype)
    student.model_id = model_id(spec, "student", builtin_dirs)
    return student


def check_shared_vocabulary(
    teacher_tokenizer: PreTrainedTokenizerBase, student_tokenizer: PreTrainedTokenizerBase
) -> int:
    """The number V of token ids whose meaning teacher and student share; else an error.

    The KL compares the two distributions id by id over ids 0 .. V-1, the teacher's
    vocabulary. Every teacher token must have the same id in the student; the
    student may add tokens of its own after them (Qwen2-Audio's audio markers), which
    text never tokenizes to. bos, eos and unk must be the same tokens.
    """
    teacher_vocab = teacher_tokenizer.get_vocab()
    student_vocab = student_tokenizer.get_vocab()
    size = len(teacher_vocab)
    added = student_tokenizer.get_added_vocab()

    def shared(token: str) -> bool:
        if token in teacher_vocab:
            return teacher_vocab[token] == student_vocab.get(token)
        return token in added and student_vocab[token] >= size

    if not all(map(shared, set(teacher_vocab) | set(student_vocab))):
        missing = len(teacher_vocab) + len(student_vocab) + 1

        def order(token: str) -> tuple[int, str]:
            ids = (teacher_vocab.get(token, missing), student_vocab.get(token, missing))
            return min(ids), token

        token = min(
            (t for t in set(teacher_vocab) | set(student_vocab) if not shared(t)), key=order
        )
        raise SaladpipeError(
            f"teacher and student tokenizers differ: token {token!r} is "
            f"{_describe_id(teacher_vocab, token)} in the teacher but "
            f"{_describe_id(student_vocab, token)} in the student"
        )
    if max(teacher_vocab.values(), default=-1) != size - 1:
        raise SaladpipeError(
            f"teacher tokenizer ids are not 0 .. {size - 1}: the shared vocabulary is undefined"
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
    return size


def _describe_id(vocab: Mapping[str, int], token: str) -> str:
    return f"id {vocab[token]}" if token in vocab else "absent"


def _special_tokens(tokenizer: PreTrainedTokenizerBase) -> dict[str, str]:
    """bos, eos and unk: the roles that change how text is read (padding is masked)."""
    mapping = tokenizer.special_tokens_map
    return {
        role: str(mapping[role])
        for role in ("bos_token", "eos_token", "unk_token")
        if role in mapping
    }


BuiltinDirs = tuple[tuple[str, Path], ...]


@dataclass(frozen=True)
class ScorerSpec(Heavy["DistillationScorer"]):
    """The teacher and student of a config, loaded once per worker, with the ids of their
    weights and the settings that change scores (both keyed: a new checkpoint at the same
    path, or another device, scores anew)."""

    models: ModelsSection
    builtin_dirs: BuiltinDirs
    model_ids: tuple[str, str]
    settings: tuple[tuple[str, str], ...]
    kind = "scorer"

    @classmethod
    def of(cls, models: ModelsSection, builtin_dirs: BuiltinDirs) -> ScorerSpec:
        """The spec of `models` on this machine: ids found without loading any weights."""
        builtin = dict(builtin_dirs)
        ids = (
            model_id(models.teacher, "teacher", builtin),
            model_id(models.student, "student", builtin),
        )
        from saladpipe.models.distillation import SCORER_VERSION

        device = resolve_device(models.device)
        settings = {
            "version": str(SCORER_VERSION),
            "device": device.type,
            "dtype": str(resolve_dtype(models.dtype, device)),
            "max_tokens": str(models.max_tokens),
            "forgetting": str(models.forgetting),
        }
        return cls(models, builtin_dirs, ids, tuple(sorted(settings.items())))

    def build(self) -> DistillationScorer:
        from saladpipe.models.distillation import DistillationScorer

        builtin = dict(self.builtin_dirs)
        models = self.models
        return DistillationScorer(
            load_teacher(models.teacher, models.device, models.dtype, builtin),
            load_student(models.student, models.device, models.dtype, builtin),
            batch_tokens=models.batch_tokens,
            batch_size=models.batch_size,
            max_tokens=models.max_tokens,
            forgetting=models.forgetting,
        )


@dataclass(frozen=True)
class TokenizerSpec(Heavy[PreTrainedTokenizerBase]):
    """The teacher's tokenizer alone (a budget in tokens counts with it), without its model."""

    teacher: ModelSpec
    builtin_dirs: BuiltinDirs
    kind = "tokenizer"

    def build(self) -> PreTrainedTokenizerBase:
        source = _resolve_source(self.teacher, "teacher", dict(self.builtin_dirs))
        try:
            tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(
                source.location,
                revision=None if source.local else self.teacher.revision,
                trust_remote_code=False,
                local_files_only=source.local,
            )
        except _LOAD_ERRORS as exc:
            raise SaladpipeError(
                f"cannot load the tokenizer of teacher model {self.teacher.source!r}: "
                f"{_first_line(exc)}"
            ) from None
        return tokenizer
