"""saladpipe's tests: unit/ and integration/ mirror the package, e2e/ start a Prefect server."""

from pathlib import Path

# The repository root (examples, docs, prefect.yaml, bench).
REPO = Path(__file__).resolve().parents[1]
