"""A clip is a pure function of (voice, text piece, seed): the same bytes in every run,
however texts are batched, sharded, ordered or retried. Real Piper (joe) throughout."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from saladpipe.data_schemas import RunLayout, parse_config
from saladpipe.data_schemas.config import ClipChecks, TTSSection, VoiceSpec
from saladpipe.data_schemas.manifest import Manifest, VoiceEntry
from saladpipe.pipeline.write_manifest import write_manifest
from saladpipe.tts import EngineOptions, SpeechService, SpokenText, TTSEngine, create_engine
from saladpipe.tts.piper import PiperEngine, resolve_piper_voice
from saladpipe.tts.registry import describe_voice
from saladpipe.tts.render import RenderSettings, Request, Spoken, piece_seed, render
from saladpipe.tts.voices import text_seed

TEXT = "The quick brown fox jumps over the lazy dog. It ran on, past the mill."


@pytest.fixture(scope="module")
def piper() -> TTSEngine:
    return create_engine(VoiceSpec(engine="piper"), EngineOptions(threads=1))


def test_a_text_seed_follows_the_run_seed_the_text_and_the_voice_alone() -> None:
    seed = text_seed(0, "t1", "piper", "en_US-joe-medium")
    assert seed == text_seed(0, "t1", "piper", "en_US-joe-medium") and 0 <= seed < 2**63
    others = {
        text_seed(1, "t1", "piper", "en_US-joe-medium"),
        text_seed(0, "t2", "piper", "en_US-joe-medium"),
        text_seed(0, "t1", "coqui", "en_US-joe-medium"),
        text_seed(0, "t1", "piper", "en_US-joe-medium:p225"),
    }
    assert len(others) == 4 and seed not in others


def test_each_piece_of_a_text_has_its_own_seed() -> None:
    seeds = {piece_seed(seed, piece) for seed in range(50) for piece in range(4)}
    assert len(seeds) == 200 and max(seeds) < 2**63
    assert piece_seed(7, 2) == piece_seed(7, 2)


def test_piper_speaks_the_same_bytes_for_the_same_text_and_seed_in_another_engine(
    piper: TTSEngine,
) -> None:
    again = create_engine(VoiceSpec(engine="piper"), EngineOptions(threads=1))
    first = piper.synthesize(TEXT, 11)
    assert first.tobytes() == again.synthesize(TEXT, 11).tobytes()
    assert first.tobytes() == piper.synthesize(TEXT, 11).tobytes()  # after other calls too
    other = again.synthesize(TEXT, 12)
    assert other.size != first.size or not np.array_equal(other, first)
    assert piper.deterministic and piper.voice.deterministic


def test_a_short_noise_guess_is_retried_larger_and_gives_the_same_clip(piper: TTSEngine) -> None:
    ample = create_engine(VoiceSpec(engine="piper"), EngineOptions(threads=1))
    assert isinstance(ample, PiperEngine) and isinstance(piper, PiperEngine)
    feeder: Any = ample._session
    feeder.frames_per_id = [16, 16]
    expected = ample.synthesize(TEXT, 5)
    assert feeder.frames_per_id == [16, 16]  # enough at the first try
    short: Any = piper._session
    short.frames_per_id = [1, 1]  # exact for the duration noise, too short for the prior
    assert piper.synthesize(TEXT, 5).tobytes() == expected.tobytes()
    assert short.frames_per_id[0] == 1 and short.frames_per_id[1] >= 4  # retried larger


def test_a_text_in_a_job_with_others_sounds_as_it_does_alone(piper: TTSEngine) -> None:
    """Through `render`, in batches of 2, a long text split in pieces among them."""
    settings = RenderSettings(16000, "flac", "auto", 60, 2, ClipChecks())
    texts = [
        "A first sentence, said plainly.",
        f"{TEXT} {TEXT}",  # longer than 60 characters: spoken in pieces
        "Cats purr when they are content.",
    ]
    requests = [Request(i, text, 0, 1000 + i) for i, text in enumerate(texts)]
    together = render(piper, requests, settings)
    for request, outcome in zip(requests, together, strict=True):
        [alone] = render(
            piper, [request], RenderSettings(16000, "flac", "auto", 60, 1, ClipChecks())
        )
        assert isinstance(outcome, Spoken) and isinstance(alone, Spoken)
        assert outcome.audio == alone.audio


def test_two_runs_give_the_same_audio_whatever_the_order_jobs_and_workers() -> None:
    """One call in one worker, against two shards in reverse order in two workers that
    batch by 3 (other jobs, other batch-mates, other workers). Both with one thread a
    worker: onnxruntime's sums round differently with another thread count."""
    items = [
        (f"t{i}", text)
        for i, text in enumerate(
            [
                "Rivers carry water from the hills.",
                "It rained for 40 days.",
                f"{TEXT} {TEXT} {TEXT}",
                "A short one.",
                "Cats purr when they are content, and sleep most of the day.",
                "Dr. Smith paid $12.50 on the 3rd of May.",
            ]
        )
    ]
    tts = TTSSection(workers=1, threads_per_worker=1, max_chars=80)
    with SpeechService(tts, "flac", seed=3) as service:
        first = service.speak(items)
    tts = TTSSection(workers=2, threads_per_worker=1, batch_size=3, max_chars=80)
    with SpeechService(tts, "flac", seed=3) as service:
        second = service.speak(items[3:][::-1]) + service.speak(items[:3][::-1])
    assert all(isinstance(s, SpokenText) for s in first + second)
    audio = {s.text_id: s.audio for s in first if isinstance(s, SpokenText)}
    assert {s.text_id: s.audio for s in second if isinstance(s, SpokenText)} == audio
    with SpeechService(TTSSection(threads_per_worker=1, max_chars=80), "flac", 4) as service:
        other = service.speak(items[:1])
    assert isinstance(other[0], SpokenText) and other[0].audio != audio["t0"]


def _uniform_voice(folder: Path) -> Path:
    """joe with one more random op (its output a second graph output): a voice that loads
    and speaks, but not the same clip twice."""
    folder.mkdir()
    joe = resolve_piper_voice("builtin:joe-us")
    model = onnx.load(str(joe))
    model.graph.node.append(
        helper.make_node("RandomUniformLike", ["scales"], ["extra"], name="extra")
    )
    model.graph.output.append(helper.make_tensor_value_info("extra", TensorProto.FLOAT, [3]))
    path = folder / "joe-uniform.onnx"
    onnx.save(model, str(path))
    shutil.copy(f"{joe}.json", f"{path}.json")
    return path


def test_the_manifest_records_the_voices_and_notes_the_ones_that_are_not_deterministic(
    tmp_path: Path,
) -> None:
    voice = _uniform_voice(tmp_path / "voice")
    spec = VoiceSpec(engine="piper", voice=str(voice), license="CC0-1.0")
    assert not describe_voice(spec).deterministic
    engine = create_engine(spec, EngineOptions(threads=1))
    assert not engine.deterministic and engine.synthesize("Hello there.", 0).size > 0
    uniform = f'{{ voice = {json.dumps(str(voice))}, license = "CC0-1.0" }}'
    toml = (
        '[corpus]\nbuiltin = "wordnet-domains"\n[tts]\n'
        f'voices = [{{ weight = 1.0 }}, {uniform}, {{ engine = "espeak" }}]\n'
    )
    config = parse_config(toml, "voices", tmp_path)
    layout = RunLayout(tmp_path / "run")
    write_manifest(config, layout, [], {}, {}, ["a note of the run"])
    manifest = Manifest.read(layout.manifest)
    assert manifest.voices == [
        VoiceEntry("piper", "en_US-joe-medium", "CC0-1.0", True),
        VoiceEntry("piper", "joe-uniform", "CC0-1.0", False),
        VoiceEntry("espeak", "en-us", "GPL-3.0-or-later", True),
    ]
    assert manifest.notes[0] == "a note of the run"
    [note] = manifest.notes[1:]
    assert note.startswith("voice piper joe-uniform is not deterministic: its clips differ")
    assert "resumed run reuses the clips it finished" in note


def test_a_manifest_written_before_voices_were_recorded_still_reads(tmp_path: Path) -> None:
    layout = RunLayout(tmp_path / "run")
    config = parse_config('[corpus]\nbuiltin = "wordnet-domains"\n', "old", tmp_path)
    raw = json.loads(write_manifest(config, layout, [], {}, {}, []).to_json())
    del raw["voices"]
    raw["manifest_version"] = 1
    old = Manifest.from_json(json.dumps(raw))
    assert old.voices == [] and old.manifest_version == 1 and old.notes == []
