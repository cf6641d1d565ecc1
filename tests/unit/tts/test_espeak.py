"""eSpeak NG (Debian's espeak-ng program) speaks real speech, with voices and variants."""

from __future__ import annotations

import numpy as np
import pytest

from saladpipe.data_schemas.config import ClipChecks, TTSSection, VoiceSpec
from saladpipe.data_schemas.errors import ConfigError
from saladpipe.tts import EngineOptions, SpeechService, SpokenText, check_clip, create_engine
from saladpipe.tts.audio import decode
from saladpipe.tts.checks import voiced_fraction
from saladpipe.tts.espeak import EspeakEngine

TEXT = "Rivers carry water from the hills down to the sea."


def test_espeak_speaks_with_its_voices_and_variants() -> None:
    engine = create_engine(VoiceSpec(engine="espeak"), EngineOptions())
    assert engine.sample_rate == 22050 and engine.voice.name == "en-us"
    samples = engine.synthesize(TEXT, 0)
    assert samples.dtype == np.float32 and np.abs(samples).max() <= 1.0
    assert 1.5 < samples.size / engine.sample_rate < 6.0
    assert check_clip(samples, engine.sample_rate, TEXT, ClipChecks()) is None
    assert voiced_fraction(samples, engine.sample_rate) > 0.5
    assert {"en-us", "en-gb", "de", "fr-fr"} <= set(EspeakEngine.list_voices())
    assert {"f3", "m1", "whisper"} <= set(engine.speakers())
    # Another variant is another voice: same words, different sound.
    female = create_engine(VoiceSpec(engine="espeak", speaker="f3"), EngineOptions())
    assert female.voice.name == "en-us+f3"
    other = female.synthesize(TEXT, 0)
    assert other.size != samples.size or not np.allclose(other, samples)


def test_espeak_speaks_the_same_samples_for_the_same_text_every_time() -> None:
    """It samples nothing: the seed changes nothing, nor does another engine instance."""
    engine = create_engine(VoiceSpec(engine="espeak"), EngineOptions())
    again = create_engine(VoiceSpec(engine="espeak"), EngineOptions())
    first = engine.synthesize(TEXT, 0)
    assert engine.synthesize(TEXT, 0).tobytes() == first.tobytes()
    assert again.synthesize(TEXT, 7).tobytes() == first.tobytes()
    assert engine.deterministic and engine.voice.deterministic


def test_unknown_voices_and_variants_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="no voice 'xx-nowhere'"):
        create_engine(VoiceSpec(engine="espeak", voice="xx-nowhere"), EngineOptions())
    with pytest.raises(ConfigError, match="no variant 'nobody'"):
        create_engine(VoiceSpec(engine="espeak", speaker="nobody"), EngineOptions())


def test_several_espeak_voices_in_one_run_resampled_to_the_configured_rate() -> None:
    voices = (
        VoiceSpec(engine="espeak", voice="en-us", weight=1.0),
        VoiceSpec(engine="espeak", voice="en-gb", speaker="m3", weight=1.0),
    )
    items = [(f"e{i}", f"Sentence {i} about rivers and the sea.") for i in range(12)]
    with SpeechService(TTSSection(voices=voices, sample_rate=24000), "wav", seed=5) as service:
        spoken = service.speak(items)
    assert all(isinstance(s, SpokenText) for s in spoken)
    clips = [s for s in spoken if isinstance(s, SpokenText)]
    assert {c.voice for c in clips} == {"en-us", "en-gb+m3"}
    assert {c.license for c in clips} == {"GPL-3.0-or-later"}
    assert clips[0].normalized_text == "Sentence zero about rivers and the sea."
    samples, rate = decode(clips[0].audio)
    assert rate == 24000 and abs(samples.size / rate - clips[0].duration_s) < 1e-3
