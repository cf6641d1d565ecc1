"""Many voices spread by seeded weights; licences named, recorded and refused when required."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from saladpipe.cli import main
from saladpipe.data_schemas.config import TTSSection, VoiceSpec
from saladpipe.data_schemas.errors import ConfigError
from saladpipe.tts import describe_voice
from saladpipe.tts.licenses import allows_commercial_use, canonical_license, license_in_folder
from saladpipe.tts.voices import assign_voices, check_voices


def test_voices_follow_their_weights_with_the_seed_and_keep_to_each_text() -> None:
    ids = [f"text-{i}" for i in range(6000)]
    voices = assign_voices(ids, [1.0, 2.0, 7.0], seed=3)
    shares = Counter(voices)
    for voice, expected in ((0, 0.1), (1, 0.2), (2, 0.7)):
        assert abs(shares[voice] / len(ids) - expected) < 0.02
    assert assign_voices(ids, [1.0, 2.0, 7.0], seed=3) == voices
    assert assign_voices(ids, [1.0, 2.0, 7.0], seed=4) != voices
    # A text keeps its voice in another order or shard.
    assert assign_voices(ids[::-1][:100], [1.0, 2.0, 7.0], seed=3) == voices[::-1][:100]
    with pytest.raises(ValueError, match="positive"):
        assign_voices(ids, [1.0, 0.0], seed=0)


@pytest.mark.parametrize(
    ("raw", "name", "commercial"),
    [
        ("CPML", "CPML", False),
        ("CC BY-NC-ND 4.0", "CC-BY-NC", False),
        ("apache 2.0", "Apache-2.0", True),
        ("bsd-3-clause", "BSD-3-Clause", True),
        ("CC-BY-SA 4.0", "CC-BY-SA-4.0", True),
        ("CC0", "CC0-1.0", True),
        ("MPL", "MPL-2.0", True),
        ("custom - see https://example.org", "custom - see https://example.org", False),
        ("", "unknown", False),
        (None, "unknown", False),
    ],
)
def test_licences_get_one_name_and_only_known_ones_allow_commercial_use(
    raw: str | None, name: str, commercial: bool
) -> None:
    assert canonical_license(raw) == name
    assert allows_commercial_use(name) is commercial


def test_a_folder_declares_its_licence_in_a_card_or_a_licence_file(tmp_path: Path) -> None:
    card = tmp_path / "card"
    card.mkdir()
    (card / "MODEL_CARD").write_text("# Voice\n\n* Language: en\n* License: CC0\n")
    assert license_in_folder(card) == "CC0-1.0"
    full = tmp_path / "full"
    full.mkdir()
    (full / "LICENSE.txt").write_text("Coqui Public Model License 1.0.0\n\nThis license ...")
    assert license_in_folder(full) == "CPML"
    assert license_in_folder(tmp_path) is None


def test_each_engine_names_the_licence_of_its_voices() -> None:
    piper = describe_voice(VoiceSpec(engine="piper", voice="builtin:joe-us"))
    assert (piper.name, piper.language, piper.license) == ("en_US-joe-medium", "en_US", "CC0-1.0")
    espeak = describe_voice(VoiceSpec(engine="espeak", voice="en-gb", speaker="f2"))
    assert (espeak.name, espeak.language, espeak.license) == (
        "en-gb+f2",
        "en-gb",
        "GPL-3.0-or-later",
    )
    xtts = describe_voice(
        VoiceSpec(engine="coqui", voice="tts_models/multilingual/multi-dataset/xtts_v2")
    )
    assert xtts.license == "CPML"
    vctk = describe_voice(
        VoiceSpec(engine="coqui", voice="tts_models/en/vctk/vits", speaker="p225")
    )
    assert (vctk.name, vctk.license) == ("tts_models/en/vctk/vits:p225", "Apache-2.0")


def test_each_engine_says_where_its_clips_are_the_same_in_every_run() -> None:
    """Resolved without loading a model: on the CPU every builtin engine is; on a GPU the
    neural ones are not (its kernels may sum in another order from run to run)."""
    voices = {
        "piper": VoiceSpec(engine="piper"),
        "espeak": VoiceSpec(engine="espeak"),
        "coqui": VoiceSpec(engine="coqui", voice="tts_models/en/vctk/vits", speaker="p225"),
    }
    on = {
        (name, device): describe_voice(spec, device).deterministic
        for name, spec in voices.items()
        for device in ("cpu", "cuda")
    }
    assert on == {
        ("piper", "cpu"): True,
        ("piper", "cuda"): False,
        ("espeak", "cpu"): True,
        ("espeak", "cuda"): True,  # a program on the CPU whatever the device
        ("coqui", "cpu"): True,
        ("coqui", "cuda"): False,
    }


def test_a_run_that_requires_commercial_licences_refuses_xtts_before_anything_runs() -> None:
    voices = (
        VoiceSpec(engine="coqui", voice="tts_models/en/vctk/vits", speaker="p225"),
        VoiceSpec(engine="coqui", voice="tts_models/multilingual/multi-dataset/xtts_v2"),
    )
    assert [v.license for v in check_voices(TTSSection(voices=voices))] == ["Apache-2.0", "CPML"]
    with pytest.raises(ConfigError, match=r"tts.voices\[1\]: .*xtts_v2 is under licence 'CPML'"):
        check_voices(TTSSection(voices=voices, require_commercial_license=True))
    # A local model without a licence file is unknown, hence refused, unless the config names it.
    assert (
        check_voices(TTSSection(voice="builtin:joe-us", require_commercial_license=True))[0].license
        == "CC0-1.0"
    )


def test_the_command_refuses_bad_voices_and_licences_with_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = ["--output-dir", str(tmp_path / "run")]
    xtts = "tts.voices=[{engine='coqui', voice='tts_models/multilingual/multi-dataset/xtts_v2'}]"
    assert main(["run", "--set", xtts, "--set", "tts.require_commercial_license=true", *out]) == 2
    assert "does not allow commercial use" in capsys.readouterr().err
    assert main(["run", "--set", "tts.engine=espeak", "--set", "tts.voice=xx-nowhere", *out]) == 2
    assert "eSpeak NG has no voice 'xx-nowhere'" in capsys.readouterr().err
    assert main(["run", "--set", "tts.engine=festival", *out]) == 2
    assert "unknown engine 'festival'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_unknown_coqui_models_and_missing_folders_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="neither a Coqui model name"):
        describe_voice(VoiceSpec(engine="coqui", voice="tts_models/xx/nothing/here"))
    with pytest.raises(ConfigError, match=r"has no config\.json"):
        describe_voice(VoiceSpec(engine="coqui", voice=str(tmp_path)))
    with pytest.raises(ConfigError, match="needs a model name"):
        describe_voice(VoiceSpec(engine="coqui"))
    with pytest.raises(ConfigError, match="Piper voice not found"):
        describe_voice(VoiceSpec(engine="piper", voice=str(tmp_path / "missing.onnx")))
    with pytest.raises(ConfigError, match="no speaker 'nobody'"):
        describe_voice(VoiceSpec(engine="piper", speaker="nobody"))


def test_voice_entries_inherit_the_engine_and_the_voice_of_that_engine(tmp_path: Path) -> None:
    from saladpipe.data_schemas.config import parse_config

    (tmp_path / "ref.wav").write_bytes(b"")
    config = parse_config(
        '[corpus]\nbuiltin = "wordnet-domains"\n[tts]\nengine = "piper"\n'
        'voice = "builtin:joe-us"\nvoices = [{weight = 3.0}, {engine = "espeak", speaker = "f3"},'
        ' {engine = "coqui", voice = "./xtts", speaker = "./ref.wav", language = "en"}]\n',
        "test",
        tmp_path,
    )
    specs = config.tts.voice_specs()
    assert [(s.engine, s.voice, s.speaker, s.weight) for s in specs] == [
        ("piper", "builtin:joe-us", None, 3.0),
        ("espeak", None, "f3", 1.0),
        ("coqui", str(tmp_path / "xtts"), str(tmp_path / "ref.wav"), 1.0),
    ]
    assert [s.engine for s in TTSSection().voice_specs()] == ["piper"]


def test_the_manifest_records_the_packages_of_the_run_s_engines() -> None:
    """Each engine names the packages that shape its audio (`TTSEngine.packages`); the
    manifest's versions hold those of the engines the run uses, next to the pipeline's."""
    from saladpipe.cli import default_config
    from saladpipe.pipeline.write_manifest import package_versions

    piper = package_versions(default_config())
    mixed = package_versions(
        default_config(
            ["tts.voices=[{engine='espeak'}, {engine='coqui', voice='tts_models/en/vctk/vits'}]"]
        )
    )
    assert {"python", "torch", "numpy", "piper-tts", "onnxruntime"} <= set(piper)
    assert "coqui-tts" not in piper
    assert "coqui-tts" in mixed and "piper-tts" not in mixed
    assert piper["piper-tts"] != "not installed"
