"""Batched VITS inference: many texts per model call, each clip as if spoken alone.

Coqui's API speaks one text per call. Its VITS model accepts a padded batch with
lengths; the text encoder, duration predictor and flow honour those lengths, but
the HiFi-GAN decoder does not: its convolutions read the padding after a short
clip, and every layer's bias turns that padding into non-zero values (the "noise
at the end of shorter clips" users of padded batches reported). Here every
decoder convolution sees its input masked to each clip's own length, so a clip
from a batch equals the clip synthesized alone, and each clip is cut at its own
length (its frames times the decoder's hop), never at the batch's. A lone clip has
no padding and skips the masks (they cost a share of a CPU call: docs/benchmarks.md).

VITS samples twice, from torch's global generator: a duration noise over the text
(`torch.randn` in the stochastic duration predictor) and a prior noise over the frames
(`torch.randn_like` in `Vits.inference`). Here both are built row by row from each
text's own seed, drawn time-major, so a clip follows its seed whatever its batch-mates,
with the default noise scales on, and the global generator is left alone.

The decoder is most of a VITS call on the CPU; `set_decoder_dtype` runs it in
bfloat16 (faster on a CPU with AVX512-BF16: docs/benchmarks.md) while the text encoder,
duration predictor and flow stay in float32, so every clip keeps the length float32
gives it.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from saladpipe.tts.noise import time_major_noise


@contextlib.contextmanager
def _per_clip_decoding(model: Any) -> Iterator[None]:
    """Mask every decoder convolution's input to each clip's own frame count.

    The frame counts exist only inside `inference` (after the duration predictor);
    they are read from the mask that `upsampling_z` returns right before decoding.
    """
    original = model.upsampling_z
    frames: list[torch.Tensor] = []

    def upsampling_z(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
        z, segment, slices, y_mask = original(*args, **kwargs)
        frames.append(y_mask[:, 0].sum(-1).long())
        return z, segment, slices, y_mask

    def mask_input(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        x, steps = args[0], args[0].shape[-1]
        if steps == 1:  # the speaker conditioning, not a signal
            return args
        valid = frames[-1] * steps // int(frames[-1].max())
        keep = torch.arange(steps, device=x.device)[None, :] < valid[:, None]
        return (x * keep[:, None, :].to(x.dtype), *args[1:])

    handles = [
        module.register_forward_pre_hook(mask_input)
        for module in model.waveform_decoder.modules()
        if isinstance(module, nn.Conv1d | nn.ConvTranspose1d)
    ]
    model.upsampling_z = upsampling_z
    try:
        yield
    finally:
        del model.upsampling_z
        for handle in handles:
            handle.remove()


class _SeededTorch:
    """`torch` as Coqui's VITS modules see it while a batch is spoken: the module itself,
    but for `randn` and `randn_like`, whose noise is built row by row, row b from a
    generator keyed (seed of text b, draw number), on the CPU, then moved to the model."""

    def __init__(self, seeds: list[int]) -> None:
        self._seeds = seeds
        self._draws = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(torch, name)

    def randn(self, *size: int) -> torch.Tensor:
        """As the duration predictor calls it: `torch.randn(batch, channels, steps)`."""
        return self._noise(size)

    def randn_like(self, like: torch.Tensor) -> torch.Tensor:
        return self._noise(tuple(like.shape)).to(device=like.device, dtype=like.dtype)

    def _noise(self, shape: tuple[int, ...]) -> torch.Tensor:
        batch, channels, steps = shape
        if batch != len(self._seeds):
            raise RuntimeError(f"VITS drew noise for {batch} texts, {len(self._seeds)} seeds given")
        draw, self._draws = self._draws, self._draws + 1
        rows = [time_major_noise((seed, draw), channels, steps) for seed in self._seeds]
        return torch.from_numpy(np.stack(rows))


@contextlib.contextmanager
def _per_text_noise(seeds: list[int]) -> Iterator[None]:
    """Give the two Coqui modules that sample VITS's noise a `_SeededTorch` for one call.

    Swapping a module's name for torch is seen by every thread of the process; a worker
    speaks one batch at a time.
    """
    from TTS.tts.layers.vits import stochastic_duration_predictor
    from TTS.tts.models import vits

    seeded = _SeededTorch(seeds)  # one for both: draws are numbered across the call
    modules = (stochastic_duration_predictor, vits)
    for module in modules:
        module.torch = seeded
    try:
        yield
    finally:
        for module in modules:
            module.torch = torch


class _DecoderIn(nn.Module):
    """The HiFi-GAN decoder with its weights in `dtype`: inputs cast in, float32 out."""

    def __init__(self, decoder: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.decoder = decoder.to(dtype)
        self.dtype = dtype

    def forward(self, x: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        cond = None if g is None else g.to(self.dtype)
        out: torch.Tensor = self.decoder(x.to(self.dtype), g=cond)
        return out.float()


def set_decoder_dtype(model: Any, dtype: torch.dtype) -> None:
    """Run `model`'s waveform decoder in `dtype` from now on (float32: leave it)."""
    if dtype != torch.float32:
        model.waveform_decoder = _DecoderIn(model.waveform_decoder, dtype)


def synthesize_vits_batch(
    model: Any,
    token_ids: list[list[int]],
    seeds: list[int],
    speaker_id: torch.Tensor | None = None,
    d_vector: torch.Tensor | None = None,
    language_id: int | None = None,
) -> list[np.ndarray]:
    """One model call for all `token_ids`, each sampled from its own seed; returns each clip
    trimmed to its own length."""
    device = next(model.parameters()).device
    batch = len(token_ids)
    lengths = torch.tensor([len(ids) for ids in token_ids], device=device)
    tokens = torch.zeros(batch, int(lengths.max()), dtype=torch.long, device=device)
    for row, ids in enumerate(token_ids):
        tokens[row, : len(ids)] = torch.tensor(ids, device=device)
    aux: dict[str, Any] = {
        "x_lengths": lengths,
        "speaker_ids": None if speaker_id is None else speaker_id.to(device).expand(batch),
        "d_vectors": None if d_vector is None else d_vector.to(device).expand(batch, -1),
        "language_ids": None
        if language_id is None
        else torch.full((batch,), language_id, device=device),
    }
    masks = _per_clip_decoding(model) if batch > 1 else contextlib.nullcontext()
    with torch.inference_mode(), masks, _per_text_noise(seeds):
        outputs = model.inference(tokens, aux_input=aux)
    waves = outputs["model_outputs"][:, 0]
    hop = math.prod(model.args.upsample_rates_decoder)
    samples = (outputs["y_mask"][:, 0].sum(-1).long() * hop).tolist()
    out = waves.float().cpu().numpy()
    return [out[i, : min(n, out.shape[-1])].copy() for i, n in enumerate(samples)]
