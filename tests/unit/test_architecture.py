"""The architecture as documented is the architecture as built."""

from __future__ import annotations

import re
import tomllib

from saladpipe.pipeline.catalog import BEGIN, END, STAGES, stage_table
from tests import REPO

LAYERS = [
    "saladpipe.cli",
    "saladpipe.audit | saladpipe.training | saladpipe.mix",
    "saladpipe.shards",
    "saladpipe.flows",
    "saladpipe.pipeline",
    "saladpipe.tts | saladpipe.selectors | saladpipe.models | saladpipe.corpora",
    "saladpipe.assets",
    "saladpipe.data_schemas | saladpipe.progress",
]


def test_the_stage_table_in_the_docs_is_generated_from_the_declarations() -> None:
    document = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    between = document.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert between == stage_table(), (
        "run: python -m saladpipe.pipeline.catalog docs/architecture.md"
    )


def test_the_flow_runs_every_declared_stage() -> None:
    flow = (REPO / "saladpipe" / "flows" / "round.py").read_text(encoding="utf-8")
    used = set(re.findall(r"\b([a-z_]+\.[A-Z_]+)\b", flow))
    for stage in STAGES:
        module = stage.run.__module__.rsplit(".", 1)[1]
        constant = next(
            name
            for name, value in vars(__import__(stage.run.__module__, fromlist=["x"])).items()
            if value is stage
        )
        assert f"{module}.{constant}" in used, f"{stage.name} is declared but not in the flow"


def test_the_layers_contract_is_the_documented_one() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["type"] == "layers")
    assert layers["layers"] == LAYERS
    test_command = (REPO / "scripts" / "test.sh").read_text(encoding="utf-8")
    assert "lint-imports" in test_command
