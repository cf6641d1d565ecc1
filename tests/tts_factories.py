"""Small TTS and ASR models built from configs, and engines that misbehave on purpose.

The models have random weights: their audio and transcripts are noise, but they go
through exactly the loading and inference code that real checkpoints go through.
Everything here is importable by the spawned TTS worker processes.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from saladpipe.data_schemas.config import ClipChecks
from saladpipe.tts.espeak import EspeakEngine

# Random-weight models make noise of any length and level: checks that let it through.
NOISE_CHECKS = ClipChecks(
    min_seconds_per_char=0.0,
    max_seconds_per_char=10.0,
    min_rms_dbfs=-120.0,
    min_voiced_fraction=0.0,
    max_clipped_fraction=1.0,
)


def growth_per_pass(rss: list[int]) -> float:
    """Least-squares slope of a worker's resident memory over passes, in bytes per pass.

    A leak lifts every pass by about the same amount; the allocator's one-off steps
    (a new high-water mark, scratch space that comes and goes) barely tilt the line."""
    return float(np.polyfit(np.arange(len(rss)), np.asarray(rss, dtype=np.float64), 1)[0])


def tiny_vits(folder: Path, speakers: list[str] | None = None, seed: int = 0) -> Path:
    """A tiny Coqui VITS checkpoint folder (config.json, model.pth[, speaker_ids.json])."""
    import torch
    from TTS.tts.configs.vits_config import VitsConfig
    from TTS.tts.models.vits import Vits, VitsArgs

    folder.mkdir(parents=True, exist_ok=True)
    args = VitsArgs(
        hidden_channels=32,
        hidden_channels_ffn_text_encoder=64,
        num_layers_text_encoder=2,
        upsample_initial_channel_decoder=32,
        resblock_kernel_sizes_decoder=[3],
        resblock_dilation_sizes_decoder=[[1, 3, 5]],
        init_discriminator=False,
    )
    if speakers:
        (folder / "speaker_ids.json").write_text(json.dumps({s: i for i, s in enumerate(speakers)}))
        args.use_speaker_embedding = True
        args.num_speakers = len(speakers)
        args.speakers_file = str(folder / "speaker_ids.json")
    config = VitsConfig(use_phonemes=False, text_cleaner="english_cleaners", model_args=args)
    torch.manual_seed(seed)
    model = Vits(config)
    torch.save({"model": model.state_dict()}, folder / "model.pth")
    config.save_json(str(folder / "config.json"))
    return folder


def tiny_xtts(folder: Path, seed: int = 0) -> Path:
    """A tiny XTTS checkpoint folder (config.json, model.pth, vocab.json)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from TTS.tts.configs.xtts_config import XttsArgs, XttsConfig
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer
    from TTS.tts.models.xtts import Xtts

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"[STOP]": 0, "[UNK]": 1, "[SPACE]": 2, "[START]": 3, "[en]": 4}
    for char in "abcdefghijklmnopqrstuvwxyz'.,!?-":
        vocab[char] = len(vocab)
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    tokenizer.save(str(folder / "vocab.json"))
    args = XttsArgs(
        gpt_layers=1,
        gpt_n_model_channels=32,
        gpt_n_heads=2,
        decoder_input_dim=32,
        gpt_max_audio_tokens=12,
        gpt_max_text_tokens=200,
        gpt_max_prompt_tokens=20,
        gpt_num_audio_tokens=40,
        gpt_start_audio_token=38,
        gpt_stop_audio_token=39,
    )
    config = XttsConfig(model_args=args, languages=["en"])
    torch.manual_seed(seed)
    model = Xtts(config)
    model.tokenizer = VoiceBpeTokenizer(vocab_file=str(folder / "vocab.json"))
    model.init_models()
    torch.save({"model": model.state_dict()}, folder / "model.pth")
    config.save_json(str(folder / "config.json"))
    return folder


def reference_wav(path: Path, seconds: float = 2.0, rate: int = 22050) -> Path:
    """A reference recording for voice cloning (quiet noise: the model is random anyway)."""
    noise = 0.1 * np.random.default_rng(0).standard_normal(round(seconds * rate))
    sf.write(path, noise.astype(np.float32), rate)
    return path


def tiny_ctc_asr(folder: Path, seed: int = 0) -> Path:
    """A tiny wav2vec2 CTC recogniser with a character vocabulary, saved as safetensors."""
    import torch
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,
        Wav2Vec2Processor,
    )

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<pad>": 0, "<unk>": 1, "|": 2}
    for char in "abcdefghijklmnopqrstuvwxyz'":
        vocab[char] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = Wav2Vec2CTCTokenizer(
        str(folder / "vocab.json"), unk_token="<unk>", pad_token="<pad>", word_delimiter_token="|"
    )
    features = Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, do_normalize=True, return_attention_mask=True
    )
    Wav2Vec2Processor(feature_extractor=features, tokenizer=tokenizer).save_pretrained(folder)
    config = Wav2Vec2Config(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16, 16),
        conv_stride=(5, 4),
        conv_kernel=(10, 8),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        pad_token_id=0,
    )
    torch.manual_seed(seed)
    Wav2Vec2ForCTC(config).save_pretrained(folder, safe_serialization=True)
    return folder


def tiny_whisper_asr(folder: Path, seed: int = 0) -> Path:
    """A tiny Whisper with a byte-level vocabulary and Whisper's special tokens."""
    import torch
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizer,
    )
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    folder.mkdir(parents=True, exist_ok=True)
    specials = [
        "<|endoftext|>",
        "<|startoftranscript|>",
        "<|en|>",
        "<|translate|>",
        "<|transcribe|>",
        "<|notimestamps|>",
    ]
    vocab = {char: i for i, char in enumerate(bytes_to_unicode().values())}
    for token in specials:
        vocab[token] = len(vocab)
    end = "<|endoftext|>"
    tokenizer = WhisperTokenizer(
        vocab=vocab, merges=[], unk_token=end, bos_token=end, eos_token=end, pad_token=end
    )
    tokenizer.add_special_tokens({"additional_special_tokens": specials[1:]})
    WhisperProcessor(
        feature_extractor=WhisperFeatureExtractor(feature_size=80), tokenizer=tokenizer
    ).save_pretrained(folder)
    config = WhisperConfig(
        vocab_size=len(vocab),
        d_model=32,
        encoder_layers=1,
        encoder_attention_heads=2,
        decoder_layers=1,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        num_mel_bins=80,
        max_source_positions=1500,
        max_target_positions=32,
        pad_token_id=vocab[end],
        bos_token_id=vocab[end],
        eos_token_id=vocab[end],
        decoder_start_token_id=vocab["<|startoftranscript|>"],
    )
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=vocab["<|startoftranscript|>"],
        eos_token_id=vocab[end],
        pad_token_id=vocab[end],
        bos_token_id=vocab[end],
        lang_to_id={"<|en|>": vocab["<|en|>"]},
        task_to_id={"transcribe": vocab["<|transcribe|>"], "translate": vocab["<|translate|>"]},
        no_timestamps_token_id=vocab["<|notimestamps|>"],
        is_multilingual=True,
    )
    model.save_pretrained(folder, safe_serialization=True)
    return folder


# Where MisbehavingEngine keeps what it did, across worker processes.
MARKS_ENV = "SALADPIPE_TEST_MARKS"


class MisbehavingEngine(EspeakEngine):
    """Real eSpeak NG speech, except for texts with a marker word:

    FAIL raises, HANG never returns, CRASH kills its worker process, SILENT returns
    silence; ONCE makes the marker act on the first attempt only (a flaky engine).
    """

    def synthesize(self, text: str, seed: int) -> np.ndarray:
        if "ONCE" not in text or self._first_attempt(text):
            if "FAIL" in text:
                raise RuntimeError("engine failed on purpose")
            if "HANG" in text:
                time.sleep(3600)
            if "CRASH" in text:
                os._exit(3)
            if "SILENT" in text:
                return np.zeros(self.sample_rate * 2, np.float32)
        return super().synthesize(text, seed)

    @staticmethod
    def _first_attempt(text: str) -> bool:
        name = hashlib.sha256(text.encode()).hexdigest()[:16]
        mark = Path(os.environ[MARKS_ENV]) / f"{name}.mark"
        if mark.exists():
            return False
        mark.touch()
        return True


def tiny_glow_tts(folder: Path, seed: int = 0) -> Path:
    """A tiny Coqui Glow-TTS folder: a spectrogram model, vocoded by Coqui's own API."""
    import torch
    from TTS.tts.configs.glow_tts_config import GlowTTSConfig
    from TTS.tts.models.glow_tts import GlowTTS

    folder.mkdir(parents=True, exist_ok=True)
    config = GlowTTSConfig(
        use_phonemes=False,
        text_cleaner="basic_cleaners",
        hidden_channels_enc=32,
        hidden_channels_dec=32,
        hidden_channels_dp=32,
        num_flow_blocks_dec=2,
        num_block_layers=2,
        encoder_params={
            "kernel_size": 3,
            "dropout_p": 0.1,
            "num_layers": 1,
            "num_heads": 2,
            "hidden_channels_ffn": 32,
            "input_length": None,
        },
    )
    config.audio.griffin_lim_iters = 10
    torch.manual_seed(seed)
    model = GlowTTS(config)
    torch.save({"model": model.state_dict()}, folder / "model.pth")
    config.save_json(str(folder / "config.json"))
    return folder
