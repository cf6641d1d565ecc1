"""Coqui TTS for real, with models built from configs (their audio is noise, their code path
is the one real checkpoints take): batched VITS, XTTS with cached latents, Coqui's API."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
import torch

from saladpipe.data_schemas.config import TTSSection, VoiceSpec
from saladpipe.tts import EngineOptions, SpeechService, SpokenText, create_engine
from saladpipe.tts.coqui import CoquiEngine
from saladpipe.tts.coqui_vits import synthesize_vits_batch
from tests.tts_factories import (
    NOISE_CHECKS,
    growth_per_pass,
    reference_wav,
    tiny_glow_tts,
    tiny_vits,
    tiny_xtts,
)

TEXTS = [
    "A longer sentence about the river that runs past the old mill.",
    "Short one.",
    "A sentence of middling length, about cats.",
]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("coqui")
    return {
        "vits": tiny_vits(root / "vits-ms", speakers=["alice", "bob", "carol"]),
        "xtts": tiny_xtts(root / "xtts"),
        "glow": tiny_glow_tts(root / "glow"),
        "reference": reference_wav(root / "anna.wav"),
    }


def _vits(models: dict[str, Path], precision: Literal["float32", "bfloat16"]) -> CoquiEngine:
    spec = VoiceSpec(engine="coqui", voice=str(models["vits"]), speaker="bob", license="Apache-2.0")
    options = CoquiEngine.Options(precision=precision)
    engine = create_engine(spec, EngineOptions("cpu", threads=2, own=options))
    assert isinstance(engine, CoquiEngine)
    return engine


@pytest.fixture(scope="module")
def vits(models: dict[str, Path]) -> CoquiEngine:
    """In float32, so clips can be compared with Coqui's own call to float32 rounding."""
    return _vits(models, "float32")


def test_a_vits_checkpoint_folder_loads_and_reports_itself(vits: CoquiEngine) -> None:
    assert vits.sample_rate == 22050
    assert vits.speakers() == ["alice", "bob", "carol"]
    assert (vits.voice.name, vits.voice.license) == ("vits-ms:bob", "Apache-2.0")
    assert vits.batch_size == 1 and vits.max_chars == 400  # the CPU speaks one text a call
    assert not vits.needs_normalization  # english_cleaners spell out numbers themselves


SEEDS = [11, 12, 13]


def test_without_noise_a_clip_is_coquis_own_and_an_unmasked_batch_leaks(vits: CoquiEngine) -> None:
    """Noise off, so Coqui's own call (which samples from torch's global generator) can be
    the reference."""
    model: Any = vits._model
    model.inference_noise_scale, model.inference_noise_scale_dp = 0.0, 0.0
    try:
        alone = [vits.synthesize(text, seed) for text, seed in zip(TEXTS, SEEDS, strict=True)]
        coqui = [np.asarray(model.synthesize(t, speaker="bob")["wav"]) for t in TEXTS]
        naive = _naive_padded_batch(vits, TEXTS)
    finally:
        model.inference_noise_scale = model.args.inference_noise_scale
        model.inference_noise_scale_dp = model.args.inference_noise_scale_dp
    assert len({a.size for a in alone}) == 3  # the texts really differ in length
    for a, c in zip(alone, coqui, strict=True):
        assert a.size == c.size
        np.testing.assert_allclose(a, c, atol=1e-5)
    # Without the per-clip decoder mask, the padding leaks into the end of the shorter clips.
    shorter = [i for i, a in enumerate(alone) if a.size < max(x.size for x in alone)]
    assert max(np.abs(naive[i] - alone[i]).max() for i in shorter) > 1e-3


def test_a_clip_from_a_padded_batch_equals_the_same_text_spoken_alone(vits: CoquiEngine) -> None:
    """With the default noise scales on: each text's noise comes from its own seed."""
    model: Any = vits._model
    assert (model.inference_noise_scale, model.inference_noise_scale_dp) == (0.667, 1.0)
    generator = torch.get_rng_state()
    batch = vits.synthesize_batch(TEXTS, SEEDS)
    alone = [vits.synthesize(text, seed) for text, seed in zip(TEXTS, SEEDS, strict=True)]
    assert torch.equal(torch.get_rng_state(), generator)  # the global generator untouched
    assert len({a.size for a in alone}) == 3
    for b, a in zip(batch, alone, strict=True):
        assert b.size == a.size
        np.testing.assert_allclose(b, a, atol=1e-5)
        tail = round(0.05 * vits.sample_rate)  # the last 50 ms: no noise tail
        assert np.abs(b[-tail:] - a[-tail:]).max() < 1e-5
    again = vits.synthesize_batch(TEXTS, SEEDS)
    assert all(x.tobytes() == y.tobytes() for x, y in zip(batch, again, strict=True))
    other = vits.synthesize(TEXTS[0], 99)
    assert other.size != alone[0].size or not np.allclose(other, alone[0], atol=1e-3)


def test_a_bfloat16_decoder_keeps_every_clip_length_and_stays_close_to_float32(
    models: dict[str, Path], vits: CoquiEngine
) -> None:
    half = _vits(models, "bfloat16")
    assert half.precision == "bfloat16"
    pairs = list(zip(TEXTS, SEEDS, strict=True))
    exact = [vits.synthesize(text, seed) for text, seed in pairs]
    alone = [half.synthesize(text, seed) for text, seed in pairs]
    batch = half.synthesize_batch(TEXTS, SEEDS)
    for e, a, b in zip(exact, alone, batch, strict=True):
        assert e.size == a.size == b.size and a.dtype == np.float32
        assert _snr_db(e, a) > 30.0  # bfloat16 rounding, not a different clip
        assert _snr_db(a, b) > 30.0  # the per-clip masks work in bfloat16 too
        tail = round(0.05 * half.sample_rate)
        assert np.abs(b[-tail:] - a[-tail:]).max() < 0.05 * np.abs(a).max()


def _snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    noise = float(np.sum((reference - other) ** 2))
    return 10.0 * float(np.log10(float(np.sum(reference**2)) / max(noise, 1e-30)))


def test_auto_precision_is_bfloat16_only_where_the_cpu_has_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from saladpipe.tts.coqui import decoder_dtype

    for bf16, amx, expected in [
        (False, False, "float32"),
        (True, False, "bfloat16"),
        (False, True, "bfloat16"),
    ]:
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=bf16: v)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v)
        assert decoder_dtype("auto", "cpu") == expected
    assert decoder_dtype("float32", "cpu") == "float32"


def _naive_padded_batch(engine: CoquiEngine, texts: list[str]) -> list[np.ndarray]:
    """One padded model call, each clip cut at its length, decoder not masked."""
    model: Any = engine._model
    ids = [model.tokenizer.text_to_ids(t) for t in texts]
    tokens = torch.zeros(len(ids), max(map(len, ids)), dtype=torch.long)
    for row, seq in enumerate(ids):
        tokens[row, : len(seq)] = torch.tensor(seq)
    speaker = engine._speaker_id.expand(len(ids))
    aux = {"x_lengths": torch.tensor([len(s) for s in ids]), "speaker_ids": speaker}
    with torch.inference_mode():
        out = model.inference(tokens, aux_input=aux)
    frames = out["y_mask"][:, 0].sum(-1).long() * 256
    waves = out["model_outputs"][:, 0].numpy()
    return [waves[i, : int(n)] for i, n in enumerate(frames)]


def test_batching_keeps_each_clip_to_its_own_length_with_sampling_noise(vits: CoquiEngine) -> None:
    model: Any = vits._model
    ids = [model.tokenizer.text_to_ids(t) for t in TEXTS]
    waves = synthesize_vits_batch(model, ids, SEEDS, vits._speaker_id)
    # With noise the durations are sampled, but no clip is cut to or padded to another's length.
    assert all(w.size % 256 == 0 and w.size > 0 for w in waves)
    assert np.isfinite(np.concatenate(waves)).all()


def test_xtts_computes_the_speaker_latents_once_and_speaks_within_its_limit(
    models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from TTS.tts.models.xtts import Xtts

    calls: list[object] = []
    original = Xtts.get_conditioning_latents

    def counted(self: Xtts, *args: object, **kwargs: object) -> object:
        calls.append(kwargs.get("audio_path"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Xtts, "get_conditioning_latents", counted)
    spec = VoiceSpec(
        engine="coqui", voice=str(models["xtts"]), speaker=str(models["reference"]), language="en"
    )
    xtts = create_engine(spec, EngineOptions("cpu", threads=2))
    assert xtts.sample_rate == 24000 and xtts.max_chars == 250
    assert xtts.voice.name == "xtts:anna" and not xtts.needs_normalization
    assert xtts.deterministic  # on the CPU
    waves = xtts.synthesize_batch(["hello there.", "a second text."], [1, 2])
    assert len(waves) == 2 and all(w.ndim == 1 and w.size > 0 for w in waves)
    assert calls == [[str(models["reference"])]]  # once per voice, not per text
    torch.manual_seed(1234)  # whatever the global generator held before, the seed decides
    assert xtts.synthesize("a second text.", 2).tobytes() == waves[1].tobytes()
    assert xtts.synthesize("a second text.", 3).tobytes() != waves[1].tobytes()


def test_other_models_go_through_coquis_own_api(models: dict[str, Path]) -> None:
    glow = create_engine(VoiceSpec(engine="coqui", voice=str(models["glow"])), EngineOptions())
    assert glow.needs_normalization  # basic_cleaners leave digits as digits
    [wave] = glow.synthesize_batch(["Hello there."], [5])
    assert wave.dtype == np.float32 and 0 < wave.size < glow.sample_rate * 5
    # Its noise (torch) and Griffin-Lim's first phases (numpy) follow the seed.
    torch.manual_seed(1234)
    np.random.seed(1234)
    assert glow.synthesize("Hello there.", 5).tobytes() == wave.tobytes()
    assert glow.synthesize("Hello there.", 6).tobytes() != wave.tobytes()
    assert glow.deterministic


def test_coqui_voices_in_worker_processes_batch_record_each_clip_and_stay_flat(
    models: dict[str, Path],
) -> None:
    """Two speakers of one model in a worker. Then memory: the same texts (same seeds,
    so the same shapes) spoken again and again must not grow the worker (Coqui users saw
    RAM grow over hundreds of VITS calls). New text lengths may raise the allocator's
    high-water mark once; a leak would grow with every pass."""
    voices = tuple(
        VoiceSpec(engine="coqui", voice=str(models["vits"]), speaker=s, license="Apache-2.0")
        for s in ("alice", "carol")
    )
    items = [(f"c{i}", f"Sentence {i} for the Coqui worker test.") for i in range(6)]
    tts = TTSSection(voices=voices, checks=NOISE_CHECKS, device="cpu", workers=1, batch_size=2)
    with SpeechService(tts, "flac", seed=0) as service:
        assert [r.batch_size for r in service.reports] == [2, 2]  # padded batches in a worker
        spoken = service.speak(items)
        texts = [(f"m{i}", f"Call number {i} of many, {'and more ' * (i % 7)}") for i in range(20)]
        rss = []
        for _ in range(10):
            service.speak(texts)
            rss.append(service._pool.worker_rss_bytes()[0])
    # RSS moves by up to ~9 MB from pass to pass (bfloat16 oneDNN scratch space comes and
    # goes) and may step up once by a few MB (1060, 1062, 1062, 1066, 1066, 1066 MB in one CI
    # run), so no two passes can be compared. A leak lifts every pass: the slope over the
    # passes after the first must stay under 2 MB a pass (100 kB a clip).
    assert growth_per_pass(rss[1:]) < 2 * 2**20, [r // 2**20 for r in rss]
    assert all(isinstance(s, SpokenText) for s in spoken)
    clips = [s for s in spoken if isinstance(s, SpokenText)]
    assert {c.voice for c in clips} == {"vits-ms:alice", "vits-ms:carol"}
    assert {(c.engine, c.license, c.sampling_rate) for c in clips} == {
        ("coqui", "Apache-2.0", 16000)
    }
