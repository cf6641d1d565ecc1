"""The one environment: Coqui TTS, torchaudio, torchcodec and `datasets` audio all work in it.

The lock pins torch 2.9.1 because Coqui TTS cannot import beside a newer CPU torch here;
these tests fail the moment an upgrade breaks that combination.
"""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf
import torch


def test_coqui_vits_built_from_a_config_synthesizes_on_the_cpu() -> None:
    from TTS.tts.configs.vits_config import VitsConfig
    from TTS.tts.models.vits import Vits, VitsArgs

    args = VitsArgs(
        hidden_channels=32,
        hidden_channels_ffn_text_encoder=64,
        num_layers_text_encoder=2,
        upsample_initial_channel_decoder=32,
        resblock_kernel_sizes_decoder=[3],
        resblock_dilation_sizes_decoder=[[1, 3, 5]],
        init_discriminator=False,
    )
    config = VitsConfig(use_phonemes=False, text_cleaner="english_cleaners", model_args=args)
    torch.manual_seed(0)
    model = Vits(config).eval()
    ids = model.tokenizer.text_to_ids("hello world, this is a test.")
    with torch.inference_mode():
        out = model.inference(
            torch.LongTensor(ids)[None], aux_input={"x_lengths": torch.LongTensor([len(ids)])}
        )
    wave = out["model_outputs"]
    assert wave.shape[0] == 1 and wave.shape[-1] > 1000
    assert torch.isfinite(wave).all()


def test_torchaudio_and_torchcodec_decode_flac() -> None:
    import torchaudio
    from torchcodec.decoders import AudioDecoder

    tone = (0.3 * np.sin(np.arange(8000) / 5)).astype(np.float32)
    buffer = io.BytesIO()
    sf.write(buffer, tone, 8000, format="FLAC")
    samples = AudioDecoder(buffer.getvalue()).get_all_samples()
    assert samples.sample_rate == 8000 and samples.data.shape == (1, 8000)
    resampled = torchaudio.functional.resample(samples.data, 8000, 16000)
    assert resampled.shape == (1, 16000)
