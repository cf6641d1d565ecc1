"""The run configuration: one TOML file, validated once at the edge.

Every section is a frozen pydantic model that forbids unknown keys, so a typo is
an error naming the key rather than a silently ignored setting. Relative paths in
a config file resolve against the folder of that file; the embedded default
resolves them against the working directory.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from saladpipe.data_schemas.errors import ConfigError

BUILTIN_PREFIX = "builtin:"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunSection(_Section):
    """Identity of the run and where it writes."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9._-]+$")] = "saladpipe"
    output_dir: Path | None = None
    seed: int = 0


class CorpusSection(_Section):
    """Where the text pool comes from: a builtin corpus or files on disk."""

    builtin: Literal["wordnet-domains"] | None = None
    builtin_texts_per_domain: Annotated[int, Field(gt=0)] = 500
    path: Path | None = None
    format: Literal["auto", "parquet", "jsonl", "text"] = "auto"
    text_field: str = "text"
    id_field: str | None = "id"
    label_field: str | None = "domain"
    max_chars: Annotated[int, Field(gt=0)] = 1000
    shard_rows: Annotated[int, Field(gt=0)] = 5000

    @model_validator(mode="after")
    def _one_source(self) -> CorpusSection:
        if (self.builtin is None) == (self.path is None):
            raise ValueError("set exactly one of corpus.builtin and corpus.path")
        return self


class EmbedSection(_Section):
    """Sentence-embedding model used for clustering."""

    model: str = "builtin:all-MiniLM-L6-v2"
    batch_size: Annotated[int, Field(gt=0)] = 128
    device: str = "auto"


class ClusterSection(_Section):
    """faiss k-means over the embeddings."""

    k: Annotated[int, Field(ge=2)] = 16
    iterations: Annotated[int, Field(gt=0)] = 20


class ProbeSection(_Section):
    """Probe texts per cluster and how each is split into spoken prefix and text continuation."""

    per_cluster: Annotated[int, Field(gt=0)] = 8
    split: Literal["fraction", "words"] = "fraction"
    prefix_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.5
    prefix_words: Annotated[int, Field(gt=0)] = 8
    shard_rows: Annotated[int, Field(gt=0)] = 256


class ModelSpec(_Section):
    """A model by local folder, hub name or builtin placeholder name."""

    source: Annotated[str, Field(min_length=1)]
    revision: str | None = None


class ModelsSection(_Section):
    """Teacher (text LM) and student (speech-adapted LM) used for scoring."""

    teacher: ModelSpec = ModelSpec(source="builtin:placeholder-teacher")
    student: ModelSpec = ModelSpec(source="builtin:placeholder-student")
    device: str = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    batch_size: Annotated[int, Field(gt=0)] = 16
    max_tokens: Annotated[int, Field(gt=0)] = 256


class TTSSection(_Section):
    """The synthesis engine and voice."""

    engine: str = "piper"
    voice: str = "builtin:joe-us"
    sample_rate: Annotated[int, Field(ge=8000, le=48000)] = 16000


class SelectSection(_Section):
    """How gap scores become a selection, and how much to select."""

    strategy: str = "salad"
    gamma: Annotated[float, Field(ge=0.0)] = 5.0
    budget_texts: Annotated[int, Field(gt=0)] = 400


class OutputSection(_Section):
    """The trainer-facing shards."""

    shard_rows: Annotated[int, Field(gt=0)] = 500
    audio_format: Literal["flac", "wav"] = "flac"


class PrefectSection(_Section):
    """Which Prefect server records the flow; none set means a local one is started."""

    api_url: str | None = None


class RunConfig(_Section):
    """A whole run, as read from one TOML file."""

    run: RunSection = RunSection()
    corpus: CorpusSection
    embed: EmbedSection = EmbedSection()
    cluster: ClusterSection = ClusterSection()
    probe: ProbeSection = ProbeSection()
    models: ModelsSection = ModelsSection()
    tts: TTSSection = TTSSection()
    select: SelectSection = SelectSection()
    output: OutputSection = OutputSection()
    prefect: PrefectSection = PrefectSection()

    def config_hash(self) -> str:
        """Hash of the canonical JSON form: equal configs, equal hashes."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def output_path(self) -> Path:
        """The run folder: the configured one, else runs/<name> under the working directory."""
        return self.run.output_dir or Path.cwd() / "runs" / self.run.name


def is_builtin(source: str) -> bool:
    """True for `builtin:NAME` references to models or voices that ship with saladpipe."""
    return source.startswith(BUILTIN_PREFIX)


def _format_error(origin: str, err: ValidationError) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "(top level)"
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    elif "input" in first and first["type"] not in {"missing"}:
        msg = f"{msg} (got {first['input']!r})"
    more = len(err.errors()) - 1
    suffix = f" (+{more} more)" if more else ""
    return f"config error in {origin}: {key}: {msg}{suffix}"


def _apply_override(data: dict[str, Any], assignment: str) -> None:
    """Apply one `section.key=value` override; the value is parsed as TOML, else taken as text."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"config error: override {assignment!r} is not of the form key=value")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    parts = key.strip().split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"config error: override {key!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def _resolve_paths(data: dict[str, Any], base_dir: Path) -> None:
    """Make relative paths absolute against base_dir, before validation checks existence."""
    corpus = data.get("corpus")
    if isinstance(corpus, dict) and isinstance(corpus.get("path"), str):
        corpus["path"] = str((base_dir / corpus["path"]).expanduser())
    run = data.get("run")
    if isinstance(run, dict) and isinstance(run.get("output_dir"), str):
        run["output_dir"] = str((base_dir / run["output_dir"]).expanduser())
    models = data.get("models")
    if isinstance(models, dict):
        for role in ("teacher", "student"):
            spec = models.get(role)
            if isinstance(spec, dict) and isinstance(spec.get("source"), str):
                spec["source"] = _resolve_local(spec["source"], base_dir)
    for section, key in (("embed", "model"), ("tts", "voice")):
        sec = data.get(section)
        if isinstance(sec, dict) and isinstance(sec.get(key), str):
            sec[key] = _resolve_local(sec[key], base_dir)


def _resolve_local(source: str, base_dir: Path) -> str:
    """A source that looks like a path (./x, ../x, /x, ~/x) becomes absolute; hub names stay."""
    if source.startswith(("./", "../", "/", "~")):
        return str((base_dir / source).expanduser().resolve())
    return source


def parse_config(
    text: str, origin: str, base_dir: Path, overrides: list[str] | tuple[str, ...] = ()
) -> RunConfig:
    """Parse and validate TOML text; raise ConfigError with a one-line message on any problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config error in {origin}: not valid TOML: {exc}") from None
    for assignment in overrides:
        _apply_override(data, assignment)
    _resolve_paths(data, base_dir)
    try:
        config = RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(origin, exc)) from None
    if config.corpus.path is not None and not config.corpus.path.exists():
        raise ConfigError(
            f"config error in {origin}: corpus.path: file not found: {config.corpus.path}"
        )
    for role in ("teacher", "student"):
        spec: ModelSpec = getattr(config.models, role)
        if spec.source.startswith("/") and not Path(spec.source).is_dir():
            raise ConfigError(
                f"config error in {origin}: models.{role}.source: folder not found: {spec.source}"
            )
    return config


def load_config(path: Path, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Read a TOML config file; relative paths in it resolve against its folder."""
    if not path.is_file():
        raise ConfigError(f"config error: config file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config error: cannot read {path}: {exc}") from None
    return parse_config(text, str(path), path.resolve().parent, overrides)
