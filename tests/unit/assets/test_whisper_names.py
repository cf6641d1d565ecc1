"""`builtin:whisper-*` names: accepted by the ASR check, unknown ones refused naming the known."""

from __future__ import annotations

from pathlib import Path

import pytest

from saladpipe.assets.whisper import WHISPER_BUILTINS, resolve_whisper_source
from saladpipe.data_schemas.config import ASR_BUILTINS, AsrCheck, parse_config
from saladpipe.data_schemas.errors import ConfigError


def _asr_config(model: str) -> str:
    """A run config whose ASR check uses `model`."""
    return f'[corpus]\nbuiltin = "wordnet-domains"\n[tts.asr]\nmodel = "{model}"\n'


def test_the_config_and_the_converter_know_the_same_names() -> None:
    assert tuple(WHISPER_BUILTINS) == ASR_BUILTINS
    assert all(source.licence == "MIT" for source in WHISPER_BUILTINS.values())


@pytest.mark.parametrize("name", ["builtin:whisper-tiny-en", "builtin:whisper-base"])
def test_the_asr_check_accepts_builtin_whisper_names(name: str, tmp_path: Path) -> None:
    assert AsrCheck.model_validate({"model": name}).model == name
    config = parse_config(_asr_config(name), "test.toml", tmp_path)
    assert config.tts.asr is not None and config.tts.asr.model == name


def test_a_folder_is_still_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"tts\.asr\.model: .*not point to a directory"):
        parse_config(_asr_config("asr"), "test.toml", tmp_path)
    (tmp_path / "asr").mkdir()
    config = parse_config(_asr_config("asr"), "test.toml", tmp_path)
    assert config.tts.asr is not None and config.tts.asr.model == tmp_path / "asr"


def test_an_unknown_builtin_is_a_config_error_naming_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="builtin:whisper-tiny-en, builtin:whisper-base"):
        parse_config(_asr_config("builtin:whisper-x"), "test.toml", tmp_path)
    with pytest.raises(ConfigError, match="builtin:whisper-tiny-en, builtin:whisper-base"):
        resolve_whisper_source("builtin:whisper-x")


def test_a_path_passes_through_unconverted(tmp_path: Path) -> None:
    assert resolve_whisper_source(str(tmp_path)) == tmp_path
