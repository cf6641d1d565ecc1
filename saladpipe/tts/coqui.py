"""Coqui TTS (the maintained coqui-tts package): any model by catalogue name or checkpoint folder.

A model loads once per process through Coqui's own loader (weights-only
`torch.load`) and is shared by every speaker spoken with it. How a text becomes
audio depends on the model family:

- VITS (VITS, VCTK, YourTTS, ...): padded batches at the model level
  (`coqui_vits`), many texts per call, so a GPU is kept busy;
- XTTS: one text per call (its autoregressive decoder is what made padded XTTS
  batches end in noise), with the speaker's conditioning latents computed once
  and kept;
- any other model: Coqui's own one-text-at-a-time API, vocoder included.

Every clip samples from its piece's seed alone: VITS from per-text noise
(`coqui_vits`); XTTS and the API path, which speak one text a call, from the global
generators seeded right before each call (`_seed_call`). On the CPU that makes a clip
the same in every run; GPU kernels may sum in a different order from run to run, so a
voice on a GPU is not reported deterministic.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from saladpipe.data_schemas.config import VoiceSpec
from saladpipe.data_schemas.errors import ConfigError
from saladpipe.tts.base import EngineOptions, TTSEngine, VoiceInfo
from saladpipe.tts.licenses import UNKNOWN, canonical_license, license_in_folder

# Text cleaners whose front end already spells out numbers and abbreviations.
_EXPANDING_CLEANERS = frozenset(
    {
        "english_cleaners",
        "phoneme_cleaners",
        "multilingual_cleaners",
        "multilingual_phoneme_cleaners",
    }
)
_CHECKPOINTS = ("model.pth", "model_file.pth", "best_model.pth", "checkpoint.pth")
# Pieces per model call for VITS: a GPU gains from large batches; on a 2-core CPU one
# sequence already keeps the cores busy and a padded pair ran slower than two single
# calls (docs/benchmarks.md, "Coqui VITS"), so the CPU speaks one text a call.
_VITS_BATCH = {"cuda": 16, "cpu": 1}


@dataclass(frozen=True)
class CoquiModel:
    """A Coqui model resolved from the config, before loading."""

    name: str
    folder: Path | None  # a local checkpoint folder; None for a catalogue name
    language: str
    license: str


@functools.cache
def catalogue() -> dict[str, dict[str, Any]]:
    """Coqui's released models (`tts --list_models`), by full name."""
    import TTS

    data = json.loads((Path(TTS.__file__).parent / ".models.json").read_text(encoding="utf-8"))
    models: dict[str, dict[str, Any]] = {}
    for language, datasets in data["tts_models"].items():
        for dataset, names in datasets.items():
            for name, item in names.items():
                models[f"tts_models/{language}/{dataset}/{name}"] = item
    return models


def resolve_coqui_model(voice: str | None, license_override: str | None = None) -> CoquiModel:
    """A catalogue name (tts_models/en/vctk/vits) or a folder holding config.json and weights."""
    if not voice:
        raise ConfigError(
            "config error: tts.voice: the coqui engine needs a model name "
            "(e.g. tts_models/en/vctk/vits) or a checkpoint folder"
        )
    path = Path(voice).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ConfigError(f"config error: tts.voice: {path} has no config.json")
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        # Coqui's downloads are named like tts_models--en--vctk--vits.
        known = catalogue().get(path.name.replace("--", "/"), {})
        found = license_in_folder(path) or known.get("license")
        languages = config.get("languages") or [config.get("phoneme_language") or "en"]
        return CoquiModel(
            name=path.name,
            folder=path,
            language=str(languages[0]),
            license=canonical_license(license_override or found),
        )
    item = catalogue().get(voice)
    if item is None:
        raise ConfigError(
            f"config error: tts.voice: {voice!r} is neither a Coqui model name "
            "(see `tts --list_models`) nor a checkpoint folder"
        )
    language = voice.split("/")[1]
    return CoquiModel(
        name=voice,
        folder=None,
        language="en" if language == "multilingual" else language,
        license=canonical_license(license_override or item.get("license")),
    )


def _checkpoint(folder: Path, config: dict[str, Any]) -> Path:
    if config.get("model") == "xtts":
        return folder  # XTTS loads model.pth, vocab.json and speakers from its folder
    for name in _CHECKPOINTS:
        if (folder / name).is_file():
            return folder / name
    raise ConfigError(
        f"config error: tts.voice: {folder} holds no checkpoint (one of {', '.join(_CHECKPOINTS)})"
    )


@functools.cache
def _load(model: CoquiModel, device: str, decoder_dtype: str) -> Any:
    """Coqui's synthesizer for `model` on `device`, once per process; a VITS model's
    waveform decoder runs in `decoder_dtype`."""
    import torch
    from TTS.api import TTS
    from TTS.tts.models.vits import Vits

    from saladpipe.tts.coqui_vits import set_decoder_dtype

    if model.folder is None:
        api = TTS(model_name=model.name, progress_bar=False)
    else:
        config = json.loads((model.folder / "config.json").read_text(encoding="utf-8"))
        checkpoint = _checkpoint(model.folder, config)
        api = TTS(
            model_path=str(checkpoint),
            config_path=str(model.folder / "config.json"),
            progress_bar=False,
        )
    synthesizer = api.to(device).synthesizer
    _bake_weight_norm(synthesizer.tts_model)
    if isinstance(synthesizer.tts_model, Vits):
        set_decoder_dtype(synthesizer.tts_model, getattr(torch, decoder_dtype))
    return synthesizer


def _bake_weight_norm(model: Any) -> None:
    """Fold weight-norm parametrizations into plain weights: the same outputs, and no
    per-call recomputation of every convolution's weight (Coqui keeps them for training)."""
    from torch.nn.utils import parametrize

    for module in model.modules():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)


def _seed_call(seed: int) -> None:
    """Seed the global generators a one-text Coqui call draws from: torch's (XTTS's token
    sampling, a model's noise, neural vocoders) and numpy's (Griffin-Lim's first phases)."""
    import torch

    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def _device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def decoder_dtype(requested: str, device: str) -> str:
    """The vocoder's number format: `requested`, or for "auto" bfloat16 where `device`
    computes it natively (emulated bfloat16 would be slower than float32)."""
    import torch

    if requested != "auto":
        return requested
    if device.startswith("cuda"):
        native = torch.cuda.is_bf16_supported()
    else:
        native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return "bfloat16" if native else "float32"


class CoquiEngine(TTSEngine):
    """One Coqui model and speaker; the GPU engine, batched for VITS models."""

    class Options(TTSEngine.Options):
        """`[tts.coqui]`."""

        # Number format of the neural vocoder (Coqui VITS's HiFi-GAN decoder, most of its
        # time): auto = bfloat16 where the device computes it natively (a CPU with
        # AVX512-BF16 or AMX, a GPU with bf16), else float32. bfloat16 decodes faster on
        # such a CPU, clip lengths unchanged, close to the float32 waveform (speed and
        # distance: docs/benchmarks.md).
        precision: Literal["auto", "float32", "bfloat16", "float16"] = "auto"

    name = "coqui"
    packages = ("coqui-tts",)
    deterministic = True  # on the CPU (describe)

    def __init__(self, spec: VoiceSpec, options: EngineOptions) -> None:
        super().__init__(spec, options)
        import torch
        from TTS.tts.models.vits import Vits
        from TTS.tts.models.xtts import Xtts

        torch.set_num_threads(options.threads)
        device = _device(options.device)
        self.precision = decoder_dtype(options.of(CoquiEngine.Options).precision, device)
        self._synthesizer = _load(
            resolve_coqui_model(spec.voice, spec.license), device, self.precision
        )
        model = self._synthesizer.tts_model
        self._model = model
        self._language = spec.language or self.voice.language
        cleaner = getattr(model.config, "text_cleaner", None)
        self.needs_normalization = cleaner not in _EXPANDING_CLEANERS
        if isinstance(model, Vits):
            self._speak: Any = self._vits_batch
            self.batch_size = _VITS_BATCH["cuda" if device.startswith("cuda") else "cpu"]
            self.max_chars = 400
            self._vits_conditioning()
        elif isinstance(model, Xtts):
            self._speak = self._xtts_batch
            self.needs_normalization = False  # its tokenizer expands numbers per language
            self.max_chars = int(model.tokenizer.char_limits.get(self._language, 250))
            self._latents = self._xtts_latents()
        else:
            self._speak = self._api_batch
            self.max_chars = 400

    @classmethod
    def wants_gpu(cls, device: str, cuda_available: bool) -> bool:
        """Coqui takes the GPU for "auto" too, where there is one."""
        return device.startswith("cuda") or (device == "auto" and cuda_available)

    @classmethod
    def describe(cls, spec: VoiceSpec, device: str = "cpu") -> VoiceInfo:
        model = resolve_coqui_model(spec.voice, spec.license)
        speaker = spec.speaker
        if speaker is not None and Path(speaker).exists():
            speaker = Path(speaker).stem  # a reference recording: named by its file
        return VoiceInfo(
            name=model.name if speaker is None else f"{model.name}:{speaker}",
            language=spec.language or model.language,
            license=model.license or UNKNOWN,
            deterministic=cls.deterministic and _device(device) == "cpu",
        )

    @classmethod
    def list_voices(cls) -> list[str]:
        return sorted(catalogue())

    @property
    def sample_rate(self) -> int:
        return int(self._synthesizer.output_sample_rate)

    def speakers(self) -> list[str]:
        manager = getattr(self._model, "speaker_manager", None)
        if manager is None:
            return []
        names = getattr(manager, "speaker_names", None) or list(manager.name_to_id)
        return sorted(str(name) for name in names)

    def synthesize(self, text: str, seed: int) -> np.ndarray:
        return self.synthesize_batch([text], [seed])[0]

    def synthesize_batch(self, texts: list[str], seeds: list[int]) -> list[np.ndarray]:
        waves: list[np.ndarray] = self._speak(texts, seeds)
        return waves

    # VITS family: padded batches at the model level.

    def _vits_conditioning(self) -> None:
        speaker, reference = self._speaker_or_reference()
        self._speaker_id, self._d_vector = self._model._get_speaker_id_or_dvector(
            speaker, reference, self._synthesizer.voice_dir
        )
        languages = self._model.language_manager.language_names
        # As Coqui's own synthesize: a one-language model reads text in that language, a
        # model without languages in its phonemizer's default.
        self._text_language = (
            languages[0] if len(languages) == 1 else self._language if languages else None
        )
        self._language_id = self._model._get_language_id(
            self._language if len(languages) > 1 else None
        )

    def _vits_batch(self, texts: list[str], seeds: list[int]) -> list[np.ndarray]:
        from saladpipe.tts.coqui_vits import synthesize_vits_batch

        ids = [
            self._model.tokenizer.text_to_ids(text, language=self._text_language) for text in texts
        ]
        return synthesize_vits_batch(
            self._model, ids, seeds, self._speaker_id, self._d_vector, self._language_id
        )

    # XTTS: one text per call, the speaker's latents computed once.

    def _xtts_latents(self) -> tuple[Any, Any]:
        speaker, reference = self._speaker_or_reference()
        manager = self._model.speaker_manager
        if speaker is not None and manager is not None and speaker in manager.speakers:
            latent, embedding = manager.speakers[speaker].values()
            return latent, embedding
        if reference is None:
            raise ConfigError(
                f"config error: tts.voices: XTTS needs a speaker of the model or a reference "
                f"recording (.wav), got {self.spec.speaker!r}"
            )
        config = self._model.config
        return self._model.get_conditioning_latents(
            audio_path=reference,
            gpt_cond_len=config.gpt_cond_len,
            gpt_cond_chunk_len=config.gpt_cond_chunk_len,
            max_ref_length=config.max_ref_len,
            sound_norm_refs=config.sound_norm_refs,
        )

    def _xtts_batch(self, texts: list[str], seeds: list[int]) -> list[np.ndarray]:
        config = self._model.config
        latent, embedding = self._latents
        waves = []
        for text, seed in zip(texts, seeds, strict=True):
            _seed_call(seed)
            out = self._model.inference(
                text,
                self._language,
                latent,
                embedding,
                temperature=config.temperature,
                length_penalty=config.length_penalty,
                repetition_penalty=config.repetition_penalty,
                top_k=config.top_k,
                top_p=config.top_p,
            )
            waves.append(np.asarray(out["wav"], dtype=np.float32))
        return waves

    # Any other model: Coqui's own API, one text at a time.

    def _api_batch(self, texts: list[str], seeds: list[int]) -> list[np.ndarray]:
        from TTS.utils.synthesizer import PAD_SILENCE_SAMPLES

        speaker, reference = self._speaker_or_reference()
        language = self._language if self._model.language_manager.num_languages > 1 else None
        waves = []
        for text, seed in zip(texts, seeds, strict=True):
            _seed_call(seed)
            wav = self._synthesizer.tts(
                text,
                speaker_name=speaker,
                language_name=language,
                speaker_wav=reference,
                split_sentences=False,
            )
            # The API appends a fixed silence after every sentence; the pipeline joins pieces.
            waves.append(np.asarray(wav, dtype=np.float32)[:-PAD_SILENCE_SAMPLES])
        return waves

    def _speaker_or_reference(self) -> tuple[str | None, list[str] | None]:
        """The configured speaker as a speaker name, or as reference recordings to clone."""
        speaker = self.spec.speaker
        if speaker is None:
            return None, None
        path = Path(speaker)
        if path.is_dir():
            return path.name, [str(p) for p in sorted(path.glob("*.wav"))]
        if path.is_file():
            return path.stem, [str(path)]
        return speaker, None
