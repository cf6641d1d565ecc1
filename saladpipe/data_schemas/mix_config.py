"""The training-mix configuration: sources, their shares, and the size of the mix."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from saladpipe.data_schemas.config import format_validation_error
from saladpipe.data_schemas.errors import ConfigError

# A source path naming something saladpipe builds itself rather than a file.
BUILTIN_PREFIX = "builtin:"

# Every source format; each has one reader in saladpipe/mix/sources/.
SourceKind = Literal[
    "shards",
    "nemo_manifest",
    "hf_parquet",
    "hf_dataset",
    "lhotse_manifest",
    "lhotse_shar",
    "text",
    "unselected",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MixSource(_Section):
    """One source of the mix.

    kind:
    - `shards`: saladpipe run folders (their shards/) or folders of shards; several
      paths form one synthetic source in which no text appears twice;
    - `nemo_manifest`: JSON lines with audio_filepath, text, duration (offset optional);
    - `hf_parquet`: Hugging Face audio Parquet (an Audio column of bytes/path and a text
      column), a file or a folder of files;
    - `hf_dataset`: a folder written by `datasets.Dataset.save_to_disk`;
    - `lhotse_manifest`: a Lhotse CutSet manifest (`cuts.jsonl.gz`), one supervision text;
    - `lhotse_shar`: a Lhotse Shar folder (`cuts.*.jsonl.gz` + `recording.*.tar`);
    - `text`: text-only data: JSONL with a `text` field, Parquet with a `text` column,
      or one text a line;
    - `unselected`: the pool texts a saladpipe run folder did not select (text-only).
    """

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9._-]+$")]
    kind: SourceKind
    # One path, or several (TOML list) for a source made of several folders.
    path: Annotated[tuple[Path, ...], Field(min_length=1)]
    share: Annotated[float, Field(gt=0.0)] = 1.0
    # Column names of Hugging Face sources.
    text_field: Annotated[str, Field(min_length=1)] = "text"
    audio_field: Annotated[str, Field(min_length=1)] = "audio"

    @field_validator("path", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str | Path) else value

    @property
    def speech(self) -> bool:
        """Whether the source's rows carry audio."""
        return self.kind not in ("text", "unselected")


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


def _resolve(base: Path, value: object) -> object:
    """A relative path against the config's folder; builtin names and non-strings as they are."""
    if not isinstance(value, str) or value.startswith(BUILTIN_PREFIX):
        return value
    return str((base / value).expanduser())


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
        if isinstance(source, dict) and "path" in source:
            paths = source["path"]
            source["path"] = (
                [_resolve(base, p) for p in paths]
                if isinstance(paths, list)
                else _resolve(base, paths)
            )
    mix = data.get("mix")
    if isinstance(mix, dict) and isinstance(mix.get("output_dir"), str):
        mix["output_dir"] = _resolve(base, mix["output_dir"])
    try:
        config = MixConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(str(path), exc)) from None
    for i, source in enumerate(config.sources):
        for p in source.path:
            if not str(p).startswith(BUILTIN_PREFIX) and not p.exists():
                raise ConfigError(f"config error in {path}: sources.{i}.path: not found: {p}")
    return config
