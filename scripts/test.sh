#!/usr/bin/env bash
# Set up (idempotent), then lint, type-check, check the layers and run the whole test suite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
.venv/bin/ruff check saladpipe tests bench
.venv/bin/ruff format --check saladpipe tests bench
.venv/bin/python -m mypy
.venv/bin/lint-imports
exec .venv/bin/python -m pytest "$@"
