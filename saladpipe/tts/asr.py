"""ASR round trip: transcribe each clip and measure its character error rate (CER).

A clip can pass every signal check and still say the wrong words (skipped or
repeated phrases, babble). A speech recogniser from a local folder, Whisper or a
wav2vec2-style CTC model, transcribes every clip; the CER against the text the
engine read tells how intelligible the clip is. Both sides are normalised the
same way (numbers spelled out, lower case, no punctuation) before comparing.
"""

from __future__ import annotations

import re
import sys
from typing import Any

import numpy as np
from rapidfuzz.distance import Levenshtein

from saladpipe.assets.whisper import resolve_whisper_source
from saladpipe.assets.whisper_window import cut_positions, window_features, window_positions
from saladpipe.data_schemas.config import AsrCheck
from saladpipe.data_schemas.errors import ConfigError
from saladpipe.tts.audio import resample
from saladpipe.tts.normalize import base_language, normalize_text


def comparable(text: str, language: str = "en") -> str:
    """Text reduced to what a transcript can be compared on: words, lower case, single spaces."""
    spoken = normalize_text(text, language).lower()
    return " ".join(re.sub(r"[^\w\s']|_", " ", spoken).split())


def character_error_rate(reference: str, hypothesis: str, language: str = "en") -> float:
    """Edits to turn the transcript into the reference, per reference character
    (Levenshtein distance of the `comparable` forms over the reference's length)."""
    ref, hyp = comparable(reference, language), comparable(hypothesis, language)
    if not ref:
        return 0.0 if not hyp else 1.0
    return Levenshtein.distance(ref, hyp) / len(ref)


# A clip rejected for its CER goes to quarantine with this reason and a detail that
# starts with the CER, so that selection can still count it against its cluster.
ASR_REJECTED = "asr_cer"
_REJECTED_CER = re.compile(rf"{ASR_REJECTED}: ([0-9.]+) > ")


def rejection_detail(cer: float, limit: float, heard: str) -> str:
    """Quarantine detail of a clip whose CER is above the limit: the CER, then what was heard."""
    return f"{ASR_REJECTED}: {cer:.4f} > {limit:.2f}; heard {heard[:80]!r}"


def rejected_cer(detail: str) -> float | None:
    """The CER a `rejection_detail` names; None for any other detail."""
    found = _REJECTED_CER.match(detail)
    return None if found is None else float(found.group(1))


class Transcriber:
    """A Whisper or CTC checkpoint from a local folder (safetensors, no remote code), or a
    builtin Whisper (`builtin:whisper-tiny-en`), converted once into such a folder."""

    def __init__(self, check: AsrCheck) -> None:
        import torch
        from transformers import AutoConfig, AutoModelForCTC, AutoProcessor

        folder = resolve_whisper_source(str(check.model))
        try:
            config = AutoConfig.from_pretrained(folder, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"config error: tts.asr.model: {folder}: {exc}") from None
        self.is_whisper = config.model_type == "whisper"
        options: dict[str, Any] = {"local_files_only": True, "use_safetensors": True}
        if self.is_whisper:
            from transformers import WhisperForConditionalGeneration

            model: Any = WhisperForConditionalGeneration.from_pretrained(folder, **options)
        elif any(name.endswith("ForCTC") for name in config.architectures or []):
            model = AutoModelForCTC.from_pretrained(folder, **options)
        else:
            raise ConfigError(
                f"config error: tts.asr.model: {folder} is neither a Whisper nor a CTC model "
                f"(architectures: {config.architectures})"
            )
        if check.device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        else:
            device = check.device
        self.model = model.to(device).eval()
        self.processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
        self.sample_rate = int(self.processor.feature_extractor.sampling_rate)
        self.batch_size = check.batch_size
        self.name = folder.name
        fe = self.processor.feature_extractor
        # (longest piece in samples, model, feature extractor), shortest window first.
        longest = 30 * self.sample_rate if self.is_whisper else sys.maxsize
        self.routes: list[tuple[int, Any, Any]] = [(longest, self.model, fe)]
        if self.is_whisper and check.short_window_s < 30:
            model, short_fe = short_window(self.model, fe, check.short_window_s)
            self.routes.insert(0, (check.short_window_s * self.sample_rate, model, short_fe))

    def transcribe(
        self, clips: list[np.ndarray], sample_rate: int, language: str = "en"
    ) -> list[str]:
        """Transcripts of mono float clips at `sample_rate`, in order."""
        pieces: list[np.ndarray] = []
        owner: list[int] = []
        for number, clip in enumerate(clips):
            for piece in self._windows(resample(clip, sample_rate, self.sample_rate)):
                pieces.append(piece)
                owner.append(number)
        # Each piece goes through the shortest window that holds it (Whisper), in batches.
        route = [
            next(r for r, (size, _, _) in enumerate(self.routes) if p.size <= size) for p in pieces
        ]
        heard = [""] * len(pieces)
        for r, (_, model, features) in enumerate(self.routes):
            mine = [i for i, chosen in enumerate(route) if chosen == r]
            for start in range(0, len(mine), self.batch_size):
                part = mine[start : start + self.batch_size]
                batch = [pieces[i] for i in part]
                said = (
                    self._whisper(batch, language, model, features)
                    if self.is_whisper
                    else self._ctc(batch)
                )
                for i, text in zip(part, said, strict=True):
                    heard[i] = text
        texts: list[list[str]] = [[] for _ in clips]
        for number, text in zip(owner, heard, strict=True):
            texts[number].append(text.strip())
        return [" ".join(t) for t in texts]

    def _windows(self, samples: np.ndarray) -> list[np.ndarray]:
        """Whisper hears at most 30 s at a time; a CTC model takes the clip whole."""
        if not self.is_whisper:
            return [samples]
        size = 30 * self.sample_rate
        return [samples[i : i + size] for i in range(0, max(1, samples.size), size)]

    def _ctc(self, batch: list[np.ndarray]) -> list[str]:
        import torch

        inputs = self.processor(
            batch, sampling_rate=self.sample_rate, return_tensors="pt", padding=True
        ).to(self.model.device)
        with torch.inference_mode():
            ids = self.model(**inputs).logits.argmax(-1)
        return [str(t) for t in self.processor.batch_decode(ids)]

    def _whisper(
        self, batch: list[np.ndarray], language: str, model: Any, features: Any
    ) -> list[str]:
        import torch

        inputs = features(
            batch, sampling_rate=self.sample_rate, return_tensors="pt", return_attention_mask=True
        )
        input_features = inputs.input_features.to(model.device, model.dtype)
        options: dict[str, Any] = {
            "attention_mask": inputs.attention_mask.to(model.device),
            # Prompt and transcript together: half the decoder's positions (a runaway
            # transcript stops there; its CER is high anyway).
            "max_length": model.config.max_target_positions // 2,
        }
        if getattr(model.generation_config, "lang_to_id", None):
            options.update(language=base_language(language), task="transcribe")
        with torch.inference_mode():
            ids = model.generate(input_features, **options)
        return [str(t) for t in self.processor.batch_decode(ids, skip_special_tokens=True)]


def short_window(model: Any, features: Any, seconds: int) -> tuple[Any, Any]:
    """The same Whisper (weights shared, not copied) hearing a `seconds` window.

    Whisper pads every input to 30 s; a few-second clip heard through a 10 s window
    (the position table cut to its first third) costs 2.56x less: 0.174 s instead of
    0.445 s a clip on 2 cores, for Piper clips of WordNet glosses a mean CER of 0.067
    instead of 0.060 (bench/asr.py, docs/benchmarks.md; the routing is tested in
    tests/integration/assets/test_whisper_conversion.py)."""
    import copy

    from transformers import WhisperForConditionalGeneration

    config = copy.deepcopy(model.config)
    positions = window_positions(
        seconds, features.sampling_rate, features.hop_length, config.max_source_positions
    )
    config.max_source_positions = positions
    short = WhisperForConditionalGeneration(config)
    state = model.state_dict()
    cut_positions(state, "model.encoder.embed_positions.weight", positions)
    short.load_state_dict(state, assign=True)
    short.generation_config = model.generation_config
    short_features = window_features(
        features.feature_size, features.sampling_rate, features.hop_length, features.n_fft, seconds
    )
    return short.to(model.device).eval(), short_features
