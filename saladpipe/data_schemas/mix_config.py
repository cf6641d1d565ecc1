"""The training-mix configuration: sources, their shares, and the size of the mix."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from saladpipe.data_schemas.config import format_validation_error
from saladpipe.data_schemas.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MixSource(_Section):
    """One source of the mix.

    kind: `shards` (a saladpipe run folder or folder of shards), `nemo_manifest` (JSON
    lines with audio_filepath, text, duration), or `text` (text-only data: JSONL with a
    `text` field, Parquet with a `text` column, or one text a line).
    """

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9._-]+$")]
    kind: Literal["shards", "nemo_manifest", "text"]
    path: Path
    share: Annotated[float, Field(gt=0.0)] = 1.0


class MixSection(_Section):
    """How big the mix is and in what unit its shares are counted."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9._-]+$")] = "mix"
    seed: int = 0
    unit: Literal["hours", "rows"] = "hours"
    total: Annotated[float, Field(gt=0.0)]
    # Text-only rows count, in hours, as long as their speech would last at this rate.
    seconds_per_char: Annotated[float, Field(gt=0.0)] = 0.065
    allow_shortfall: bool = False
    output_dir: Path | None = None


class MixConfig(_Section):
    mix: MixSection
    sources: Annotated[list[MixSource], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique_names(self) -> MixConfig:
        names = [s.name for s in self.sources]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"source names must be unique, repeated: {', '.join(duplicated)}")
        return self


def load_mix_config(path: Path) -> MixConfig:
    """Read and validate a mix TOML; relative paths resolve against its folder."""
    if not path.is_file():
        raise ConfigError(f"config error: mix config not found: {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config error in {path}: not valid TOML: {exc}") from None
    base = path.resolve().parent
    for source in data.get("sources", []):
        if isinstance(source, dict) and isinstance(source.get("path"), str):
            source["path"] = str((base / source["path"]).expanduser())
    mix = data.get("mix")
    if isinstance(mix, dict) and isinstance(mix.get("output_dir"), str):
        mix["output_dir"] = str((base / mix["output_dir"]).expanduser())
    try:
        config = MixConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(str(path), exc)) from None
    for i, source in enumerate(config.sources):
        if not source.path.exists():
            raise ConfigError(f"config error in {path}: sources.{i}.path: not found: {source.path}")
    return config
