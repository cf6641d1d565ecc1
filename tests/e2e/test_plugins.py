"""Plugins from outside the package: a TTS engine and a selection strategy defined and
registered in this module alone run a real flow through the CLI, with options and
parameters from their own config tables, and `saladpipe explain` words their picks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import pyarrow.parquet as pq
import pytest
from pydantic import BaseModel, Field

from saladpipe.cli import main
from saladpipe.data_schemas.config import VoiceSpec, parse_config
from saladpipe.flows.runners import CPU_TTS_TAG, stage_tags
from saladpipe.selectors import (
    Ordering,
    Pool,
    Strategy,
    TextInRound,
    create_strategy,
    register_strategy,
)
from saladpipe.tts import ENGINES, EngineOptions, TTSEngine, VoiceInfo, register_engine
from saladpipe.tts.registry import engine_options
from saladpipe.tts.voices import check_voices
from tests.factories import small_wordnet_corpus, write_config, write_jsonl


class EchoEngine(TTSEngine):
    """A tone for every text, as long as the text at the configured pace."""

    class Options(TTSEngine.Options):
        """`[tts.echo]`."""

        seconds_per_char: Annotated[float, Field(gt=0.0)] = 0.06
        pitch_hz: Annotated[float, Field(gt=0.0)] = 220.0

    name = "echo"
    packages = ("numpy",)
    default_voice = "tone"
    default_license = "CC0-1.0"
    needs_normalization = False
    deterministic = True
    RATE = 16000

    def __init__(self, spec: VoiceSpec, options: EngineOptions) -> None:
        super().__init__(spec, options)
        self.settings = options.of(EchoEngine.Options)

    @classmethod
    def describe(cls, spec: VoiceSpec, device: str = "cpu") -> VoiceInfo:
        name = spec.voice or cls.default_voice or ""
        return VoiceInfo(name, "en", cls.voice_license(spec), cls.deterministic)

    @classmethod
    def list_voices(cls) -> list[str]:
        return [cls.default_voice or ""]

    @property
    def sample_rate(self) -> int:
        return self.RATE

    def speakers(self) -> list[str]:
        return []

    def synthesize(self, text: str, seed: int) -> np.ndarray:
        t = np.arange(round(len(text) * self.settings.seconds_per_char * self.RATE)) / self.RATE
        return (0.3 * np.sin(2 * np.pi * self.settings.pitch_hz * t)).astype(np.float32)


class _Turns(Ordering):
    """Clusters by descending gap take turns; each turn a cluster gives its next
    `per_turn` texts by descending own gap."""

    def __init__(self, pool: Pool, per_turn: int) -> None:
        rows = pool.eligible_rows
        by_gap = rows[np.lexsort((rows, -pool.gap[rows]))]
        clusters = pool.clusters[by_gap]
        within = np.zeros(by_gap.size, dtype=np.int64)
        for cluster in np.unique(clusters):
            mine = np.flatnonzero(clusters == cluster)
            within[mine] = np.arange(mine.size)
        cluster_rank = np.argsort(np.argsort(-pool.cluster_gap, kind="stable"))
        self._rows = by_gap[np.lexsort((within, cluster_rank[clusters], within // per_turn))]
        self._next = 0

    def next(self, n: int) -> np.ndarray:
        out = self._rows[self._next : self._next + n]
        self._next += out.size
        return out

    def probability(self, rows: np.ndarray) -> np.ndarray:
        return np.ones(rows.size)


class ClusterTurns(Strategy):
    """Every cluster gets its say: clusters take turns, the largest gap first."""

    class Params(Strategy.Params):
        """`[select.turns]`."""

        per_turn: Annotated[int, Field(ge=1)] = 1

    name = "turns"
    params: Params

    def ordering(self, pool: Pool, rng: np.random.Generator) -> Ordering:
        return _Turns(pool, self.params.per_turn)

    def explain(self, text: TextInRound) -> str:
        turns = (
            "clusters take turns, largest gap first, each giving its "
            f"{self.params.per_turn} highest-gap texts left"
        )
        if text.rank is not None:
            number = int(np.sum(text.picked_clusters[: text.rank + 1] == text.cluster))
            return f"{turns}; pick {number} of cluster {text.cluster}"
        gaps = text.picked_gaps[text.picked_clusters == text.cluster]
        ended = f"ended at gap {gaps.min():.4g}" if gaps.size else "were none"
        return f"{turns}; cluster {text.cluster}'s picks {ended}"


register_engine(EchoEngine)
register_strategy(ClusterTurns)


@pytest.fixture(scope="module")
def plugin_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("plugins")
    corpus = small_wordnet_corpus(per_domain=8)
    keep = {"noun.animal", "noun.food", "verb.motion"}
    path = write_jsonl(tmp / "corpus.jsonl", [r for r in corpus.to_pylist() if r["domain"] in keep])
    config = write_config(
        tmp / "run.toml",
        path,
        tmp / "run",
        cluster={"k": 3, "iterations": 5},
        probe={"per_cluster": 2, "shard_rows": 8},
        tts={"engine": "echo", "echo": {"seconds_per_char": 0.05}},
        select={"strategy": "turns", "budget_texts": 6, "turns": {"per_turn": 2}},
    )
    assert main(["run", str(config)]) == 0
    return tmp / "run"


@pytest.mark.e2e
def test_a_plugin_engine_and_strategy_make_the_shards(plugin_run: Path) -> None:
    table = pq.read_table(sorted((plugin_run / "shards").glob("part-*.parquet")))
    assert table.num_rows == 6
    assert set(table.column("tts_engine").to_pylist()) == {"echo"}
    assert set(table.column("strategy").to_pylist()) == {"turns"}
    # [tts.echo] reached the engine in its worker process: clips at the configured pace.
    for row in table.select(["normalized_text", "duration_s"]).to_pylist():
        assert row["duration_s"] == pytest.approx(0.05 * len(row["normalized_text"]), abs=1e-3)


@pytest.mark.e2e
def test_explain_words_a_pick_of_the_plugin_strategy(
    plugin_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    selection = pq.read_table(plugin_run / "selection" / "round-000.parquet")
    first = selection.column("text_id")[0].as_py()
    assert main(["explain", first, "--run-dir", str(plugin_run)]) == 0
    out = capsys.readouterr().out
    assert "round 0 (strategy turns, per_turn 2, " in out and "SELECTED at rank 0 of 6" in out
    assert "clusters take turns, largest gap first, each giving its 2 highest-gap texts" in out


def test_a_config_names_a_plugin_nobody_imported_as_module_and_class(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Naming `module:Class` imports the module and registers the class under its name,
    which its table then goes by; the run's GPU tags come from the class too."""
    (tmp_path / "saladpipe_beeps.py").write_text(
        "from tests.e2e.test_plugins import ClusterTurns, EchoEngine\n\n\n"
        "class Beep(EchoEngine):\n    name = 'beep'\n\n\n"
        "class EveryOther(ClusterTurns):\n    name = 'every_other'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    config = parse_config(
        '[corpus]\nbuiltin = "wordnet-domains"\n'
        '[tts]\nengine = "saladpipe_beeps:Beep"\n[tts.beep]\npitch_hz = 440.0\n'
        '[select]\nstrategy = "saladpipe_beeps:EveryOther"\n[select.every_other]\nper_turn = 3\n',
        "t",
        tmp_path,
    )
    assert "beep" not in ENGINES
    assert [v.name for v in check_voices(config.tts)] == ["tone"]
    assert engine_options(config.tts, ENGINES["beep"]) == EchoEngine.Options(pitch_hz=440.0)
    strategy = create_strategy(config.select)
    assert strategy.describe() == "every_other, per_turn 3"
    assert stage_tags(config, cuda_available=True).tts == (CPU_TTS_TAG,)


def test_registration_refuses_a_class_that_would_break_a_config() -> None:
    class Voices(EchoEngine):
        name = "voices"  # would shadow tts.voices

    class Loose(EchoEngine):
        name = "loose"

        class Options(BaseModel):  # neither frozen nor refusing unknown keys
            pitch_hz: float = 1.0

    class Impostor(EchoEngine):
        name = "echo"

    with pytest.raises(ValueError, match=r"none of the \[tts\] keys"):
        register_engine(Voices)
    with pytest.raises(TypeError, match="frozen pydantic model that forbids unknown keys"):
        register_engine(Loose)
    registered = r"'echo' is already registered by tests\.e2e\.test_plugins"
    with pytest.raises(ValueError, match=registered):
        register_engine(Impostor)
    assert register_engine(EchoEngine) is EchoEngine  # again: a no-op
