#!/usr/bin/env bash
# Set up (idempotent), then lint, type-check and run the whole test suite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
.venv/bin/ruff check saladpipe tests
.venv/bin/ruff format --check saladpipe tests
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
