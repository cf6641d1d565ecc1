"""Every test that README.md and docs/ name beside a promise exists: a renamed or
deleted test must not leave a promise pointing at nothing."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests import REPO

_FULL = re.compile(r"(tests/[\w/]+\.py)::(\w+)")
_BARE = re.compile(r"`(test_\w+)`")


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    }


def test_every_test_a_document_names_exists() -> None:
    every = {name for path in (REPO / "tests").rglob("test_*.py") for name in _test_names(path)}
    documents = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    missing = []
    for document in documents:
        text = document.read_text(encoding="utf-8")
        for file, name in _FULL.findall(text):
            if not (REPO / file).is_file() or name not in _test_names(REPO / file):
                missing.append(f"{document.name}: {file}::{name}")
        missing += [f"{document.name}: {n}" for n in _BARE.findall(text) if n not in every]
    assert missing == []
