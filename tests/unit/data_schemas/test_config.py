"""Config is validated at the edge: one-line errors naming the key or path, exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from saladpipe.cli import default_config, main
from saladpipe.data_schemas import ConfigError, RunConfig, load_config, parse_config
from saladpipe.models.builtin import builtin_names, uses_placeholders
from tests import REPO


def _parse(text: str, tmp_path: Path, overrides: tuple[str, ...] = ()) -> RunConfig:
    return parse_config(text, "t.toml", tmp_path, overrides)


def test_embedded_default_equals_the_example_file() -> None:
    packaged = (REPO / "saladpipe" / "defaults" / "quickstart.toml").read_text()
    assert packaged == (REPO / "examples" / "quickstart.toml").read_text()
    config = default_config()
    assert config.corpus.builtin == "wordnet-domains"
    assert config.tts.engine == "piper"
    # The default means something: the trained builtins, never the random placeholders.
    assert builtin_names(config.models) == {"trained-teacher", "trained-student"}
    assert not uses_placeholders(config.models)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[corpus]\nbuiltin = "wordnet-domains"\nfoo = 1\n', "corpus.foo: unknown key"),
        # A strategy's parameters and an engine's options live in their own tables now.
        (
            '[corpus]\nbuiltin = "wordnet-domains"\n[select]\ngamma = 5\n',
            "select.gamma: unknown key",
        ),
        (
            '[corpus]\nbuiltin = "wordnet-domains"\n[tts]\nprecision = "float32"\n',
            "tts.precision: unknown key",
        ),
        ('[corpus]\nbuiltin = "wordnet-domains"\n[cluster]\nk = 1\n', "cluster.k:"),
        ("[corpus]\n", "set exactly one of corpus.builtin and corpus.path"),
        ('[corpus]\nbuiltin = "nope"\n', "corpus.builtin:"),
        ('[corpus]\npath = "missing.jsonl"\n', "corpus.path: file not found"),
        ("[corpus\n", "not valid TOML"),
        (
            '[corpus]\nbuiltin = "wordnet-domains"\n[select.exclude]\nmax_cluster_cer = 0.5\n',
            "select.exclude.max_cluster_cer needs tts.asr (or select.exclude.asr_cer_table)",
        ),
        (
            '[corpus]\nbuiltin = "wordnet-domains"\n[models.teacher]\nsource = "./no/such/dir"\n',
            "models.teacher.source: folder not found",
        ),
    ],
)
def test_bad_config_is_one_line_naming_the_key(text: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _parse(text, tmp_path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "c.txt").write_text("hello world\n")
    config_file = tmp_path / "run.toml"
    config_file.write_text('[run]\noutput_dir = "out"\n[corpus]\npath = "data/c.txt"\n')
    config = load_config(config_file)
    assert config.corpus.path == tmp_path / "data" / "c.txt"
    assert config.output_path() == tmp_path / "out"


def test_overrides_are_parsed_as_toml_values(tmp_path: Path) -> None:
    config = _parse(
        '[corpus]\nbuiltin = "wordnet-domains"\n',
        tmp_path,
        ("select.budget_texts=7", "tts.voice=builtin:joe-us", "run.name=x"),
    )
    assert config.select.budget_texts == 7
    assert config.tts.voice == "builtin:joe-us"
    with pytest.raises(ConfigError, match="not of the form key=value"):
        _parse('[corpus]\nbuiltin = "wordnet-domains"\n', tmp_path, ("select.salad.gamma",))


def test_config_hash_is_stable_and_sensitive(tmp_path: Path) -> None:
    a = _parse('[corpus]\nbuiltin = "wordnet-domains"\n', tmp_path)
    b = _parse('[corpus]\nbuiltin = "wordnet-domains"\n', tmp_path)
    c = _parse('[corpus]\nbuiltin = "wordnet-domains"\n', tmp_path, ("select.salad.gamma=1.0",))
    assert a.config_hash() == b.config_hash() != c.config_hash()


def test_cli_usage_errors_exit_2_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[corpus]\nbuiltin = "wordnet-domains"\n[select]\nstrategy = "nope"\n')
    for args in (
        ["run", str(bad)],
        ["run", str(tmp_path / "none.toml")],
        ["run", "--set", "x.y=1"],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "saladpipe.cli", *args],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("saladpipe: "), proc.stderr
        assert "Traceback" not in proc.stderr


def test_unknown_strategy_and_engine_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--set", "select.strategy=best", "--output-dir", str(tmp_path / "r")]) == 2
    assert "select.strategy: unknown strategy 'best'" in capsys.readouterr().err
    assert main(["run", "--set", "tts.engine=festival", "--output-dir", str(tmp_path / "r")]) == 2
    assert "tts.engine: unknown engine 'festival'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("select.salad.gamma=-1", "select.salad.gamma: Input should be greater than or equal to 0"),
        ("select.salad.gama=1", "select.salad.gama: unknown key"),
        ("select.diverse.candidates=0.5", "select.diverse.candidates: Input should be greater"),
        ("select.best.x=1", "select.best: unknown strategy 'best'"),
        ("tts.coqui.precision=int8", "tts.coqui.precision: Input should be 'auto'"),
        ("tts.piper.speed=2", "tts.piper.speed: unknown key"),
        ("tts.festival.speed=2", "tts.festival: unknown engine 'festival'"),
        ("select.strategy=no_such_module:Thing", "select.strategy: cannot import"),
        ("tts.engine=saladpipe.tts.base:VoiceInfo", "tts.engine: 'saladpipe.tts.base:VoiceInfo'"),
    ],
)
def test_plugin_tables_and_names_are_checked_before_the_run(
    override: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each `[select.<strategy>]` / `[tts.<engine>]` table against its plugin's settings,
    used by the run or not; an unknown table or module:Class names the key; exit 2."""
    assert main(["run", "--set", override, "--output-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r").exists()


def test_a_non_empty_run_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "something.parquet").write_bytes(b"x")
    assert main(["run", "--output-dir", str(tmp_path / "r")]) == 2
    assert "is not empty" in capsys.readouterr().err


def test_overwrite_clears_the_run_folder_but_keeps_its_state(tmp_path: Path) -> None:
    from saladpipe.cli.preflight import Folder, choose_round
    from saladpipe.data_schemas import RunLayout

    layout = RunLayout(tmp_path / "r")
    (layout.root / "shards").mkdir(parents=True)
    (layout.root / "shards" / "part-00000.parquet").write_bytes(b"x")
    (layout.root / "manifest.json").write_text("{}")
    layout.state.mkdir()
    (layout.state / "keep").write_text("server db")
    config = parse_config('[corpus]\nbuiltin = "wordnet-domains"\n', "test", layout.root)
    assert choose_round(layout, config, Folder.OVERWRITE) == (0, False)
    assert [p.name for p in layout.root.iterdir()] == ["state"]
    assert (layout.state / "keep").exists()


def test_corpus_command_writes_the_builtin_corpus(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pyarrow.parquet as pq

    out = tmp_path / "wordnet.parquet"
    assert main(["corpus", str(out), "--per-domain", "10", "--seed", "3"]) == 0
    table = pq.read_table(out)
    assert table.num_rows == 120 and table.column_names == ["id", "text", "domain"]
    assert "wrote 120 texts of 12 domains" in capsys.readouterr().out
