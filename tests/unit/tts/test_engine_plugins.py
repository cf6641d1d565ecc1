"""Adding an engine is one module plus one registration line: every builtin engine lives
in a module of its own that nothing but the registry imports, registered exactly once."""

from __future__ import annotations

import ast
from pathlib import Path

import saladpipe
from saladpipe.tts import ENGINES

PACKAGE = Path(saladpipe.__file__).parent
REGISTRY = PACKAGE / "tts" / "registry.py"


def _imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return modules


def test_each_builtin_engine_is_one_module_that_only_the_registry_names() -> None:
    builtin = {
        name: ENGINES[name] for name in ENGINES if ENGINES[name].__module__.startswith("saladpipe.")
    }
    assert {"piper", "espeak", "coqui", "kokoro"} <= set(builtin)
    registry = REGISTRY.read_text(encoding="utf-8")
    for name, engine in builtin.items():
        module = engine.__module__
        assert module.startswith("saladpipe.tts."), (name, module)
        own = PACKAGE.parent / (module.replace(".", "/") + ".py")
        importers = [
            str(path.relative_to(PACKAGE))
            for path in PACKAGE.rglob("*.py")
            if path not in (own, REGISTRY) and module in _imported_modules(path)
        ]
        assert importers == [], (name, importers)
        assert registry.count(f"register_engine({engine.__name__})") == 1, name
